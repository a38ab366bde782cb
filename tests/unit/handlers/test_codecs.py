"""Content types: media types, Accept negotiation, JSON / jsonlines decoding and encoding, error wording."""
from __future__ import annotations

import json

import pytest

from handlers import codecs
from handlers.codecs import LineError
from handlers.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from tasks.serving_contract import JSON, JSONLINES

SUPPORTED = "['application/json', 'application/jsonlines']"


# -- media_type ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header,expected", [
    ("application/json", JSON),
    ("application/json; charset=utf-8", JSON),
    ("application/json;charset=UTF-8", JSON),
    ("APPLICATION/JSON", JSON),
    ("Application/Json ; Charset=utf-8", JSON),
    ("  application/json  ", JSON),
    ("text/json", JSON),
    ("application/jsonlines", JSONLINES),
    ("Application/JSONLines; charset=utf-8", JSONLINES),
    ("application/x-jsonlines", JSONLINES),
    ("application/jsonl", JSONLINES),
    ("application/json-lines", JSONLINES),
])
def test_media_type_accepts_parameters_casing_and_aliases(header, expected):
    assert codecs.media_type(header) == expected


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_content_type_means_json(header):
    assert codecs.media_type(header) == JSON
    assert codecs.media_type(header, default=None) is None


@pytest.mark.parametrize("header,named", [
    ("text/csv", "text/csv"),
    ("Text/CSV; charset=utf-8", "text/csv"),
    ("multipart/form-data; boundary=xyz", "multipart/form-data"),
    ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ("application/jsonx", "application/jsonx"),
])
def test_unsupported_content_type_is_415_naming_it(header, named):
    with pytest.raises(UnsupportedMediaType) as info:
        codecs.media_type(header)
    assert info.value.status == 415
    assert info.value.message == f"content type {named!r} is not supported; send one of {SUPPORTED}"


# -- negotiate ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("request_type", [JSON, JSONLINES])
@pytest.mark.parametrize("accept", [None, "", "  ", "*/*", "application/*", "*/*;q=0.8", "text/html, */*;q=0.1"])
def test_wildcards_and_missing_accept_answer_in_the_request_format(accept, request_type):
    assert codecs.negotiate(accept, request_type) == request_type


@pytest.mark.parametrize("accept,request_type,expected", [
    ("application/json", JSONLINES, JSON),
    ("application/jsonlines", JSON, JSONLINES),
    ("Application/JSON", JSONLINES, JSON),
    ("application/x-jsonlines", JSON, JSONLINES),
    ("application/json; charset=utf-8", JSONLINES, JSON),
    ("application/json;q=0.5, application/jsonlines", JSON, JSONLINES),
    ("application/jsonlines;q=0.2, application/json;q=0.9", JSONLINES, JSON),
    ("text/html;q=1, application/json;q=0.1", JSONLINES, JSON),
    ("application/jsonlines, application/json", JSON, JSONLINES),  # equal q: the first listed wins
    ("application/json;q=0, application/jsonlines;q=0.3", JSON, JSONLINES),
    ("application/json ; q=0.4 , */*;q=0.5", JSON, JSON),
])
def test_accept_q_values_are_honoured(accept, request_type, expected):
    assert codecs.negotiate(accept, request_type) == expected


@pytest.mark.parametrize("accept", ["text/html", "text/csv, image/*", "application/json;q=0", "application/json;q=abc",
                                    "*/*;q=0"])
def test_nothing_acceptable_is_406(accept):
    with pytest.raises(NotAcceptable) as info:
        codecs.negotiate(accept, JSON)
    assert info.value.status == 406
    assert info.value.message == (f"cannot answer in {accept!r}; accepted: application/json, "
                                  "application/jsonlines or */*")


def test_a_refused_type_is_not_chosen_through_a_wildcard():
    assert codecs.negotiate("application/jsonlines;q=0, */*", JSONLINES) == JSON


# -- decode_json --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,expected", [
    (b'{"data": [{"text": "a"}, {"text": "b", "all_scores": true}]}',
     [{"text": "a"}, {"text": "b", "all_scores": True}]),
    (b'{"text": "a"}', [{"text": "a"}]),
    (b'[{"text": "a"}, {"text": "b"}]', [{"text": "a"}, {"text": "b"}]),
    ('{"data": [{"text": "caf\u00e9"}]}', [{"text": "caf\u00e9"}]),
    ('{"data": [{"text": "caf\u00e9"}]}'.encode("utf-8"), [{"text": "caf\u00e9"}]),
    (b'\xef\xbb\xbf{"text": "a"}', [{"text": "a"}]),  # a UTF-8 BOM is tolerated
    ('\ufeff{"text": "a"}', [{"text": "a"}]),
    (bytearray(b'{"text": "a"}'), [{"text": "a"}]),
    (b'{"data": []}', []),
])
def test_decode_json_shapes(body, expected):
    assert codecs.decode_json(body) == expected


@pytest.mark.parametrize("parsed,expected", [
    ({"data": [{"text": "a"}]}, [{"text": "a"}]),
    ({"text": "a"}, [{"text": "a"}]),
    ([{"text": "a"}, {"text": "b"}], [{"text": "a"}, {"text": "b"}]),
])
def test_decode_json_takes_a_body_torchserve_already_parsed(parsed, expected):
    assert codecs.decode_json(parsed) == expected


@pytest.mark.parametrize("body,message", [
    (b'{"data": "x"}', "'data' must be a list of records, got str"),
    ({"data": {"text": "a"}}, "'data' must be a list of records, got dict"),
    (b'"x"', "body must be an object with 'data' (a list of records), got str"),
    (b"3", "body must be an object with 'data' (a list of records), got int"),
    (b"null", "body must be an object with 'data' (a list of records), got NoneType"),
    (b"", "body is empty"),
    (b"  \r\n ", "body is empty"),
    (b"\xef\xbb\xbf", "body is empty"),
    (None, "body is empty"),
    (42, "unexpected body of type int"),
    (b'{"text": "\xff"}', "body is not valid UTF-8 (byte 0xff at offset 10)"),
    (b'{"text": "ok", "x": "\xc3\x28"}', "body is not valid UTF-8 (byte 0xc3 at offset 21)"),
    (b'{"text": NaN}', "NaN is not valid JSON (NaN and Infinity are not allowed)"),
    (b'{"text": "a", "w": Infinity}', "Infinity is not valid JSON (NaN and Infinity are not allowed)"),
    (b'[-Infinity]', "-Infinity is not valid JSON (NaN and Infinity are not allowed)"),
    (b'{"data": [\n  {"text": "a"},\n  {"text": }\n]}', "body is not valid JSON: Expecting value at line 3 column 12"),
    (b"{'text': 'a'}", "body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b'{"text": "a"} {"text": "b"}', "body is not valid JSON: Extra data at line 1 column 15"),
])
def test_decode_json_errors_say_what_is_wrong(body, message):
    with pytest.raises(BadRequest) as info:
        codecs.decode_json(body)
    assert info.value.status == 400
    assert info.value.message == message


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_64_levels_is_accepted():
    records = codecs.decode_json(nested(65))  # the top-level list is level 0
    assert len(records) == 1


@pytest.mark.parametrize("depth,message", [
    (66, "JSON is nested deeper than 64 levels"),
    (5000, "body is nested too deeply"),
    (200_000, "body is nested too deeply"),
])
def test_deep_nesting_is_400_not_a_recursion_error(depth, message):
    with pytest.raises(BadRequest) as info:
        codecs.decode_json(nested(depth))
    assert info.value.message == message


def test_deep_nesting_of_an_already_parsed_body_is_400():
    value: list = []
    for _ in range(100_000):  # deeper than the interpreter's recursion limit
        value = [value]
    with pytest.raises(BadRequest) as info:
        codecs.decode_json({"data": value})
    assert info.value.message == "JSON is nested deeper than 64 levels"


# -- decode_jsonlines ---------------------------------------------------------------------------------------------
def messages(records: list) -> list:
    return [r.message if isinstance(r, LineError) else r for r in records]


@pytest.mark.parametrize("body", [
    b'{"text": "a"}\n{"text": "b"}',
    b'{"text": "a"}\n{"text": "b"}\n',
    b'{"text": "a"}\r\n{"text": "b"}\r\n',
    b'{"text": "a"}\n{"text": "b"}\n\n\n',
    b'{"text": "a"}\r\n{"text": "b"}\r\n \r\n\t\n',
    b'\xef\xbb\xbf{"text": "a"}\n{"text": "b"}\n',
    '{"text": "a"}\n{"text": "b"}\n',
])
def test_jsonlines_line_endings_and_blank_trailing_lines(body):
    assert codecs.decode_jsonlines(body) == [{"text": "a"}, {"text": "b"}]


def test_only_newlines_split_lines():
    # U+2028, U+2029 and U+0085 are valid inside a JSON string: str.splitlines() would cut the record in two
    body = '{"text": "a\u2028b\x85c"}\n{"text": "d\u2029e"}\n'.encode("utf-8")
    assert codecs.decode_jsonlines(body) == [{"text": "a\u2028b\x85c"}, {"text": "d\u2029e"}]


def test_a_blank_line_in_the_middle_stays_in_place():
    records = codecs.decode_jsonlines(b'{"text": "a"}\n\n{"text": "b"}\r\n  \r\n{"text": "c"}\n')
    assert messages(records) == [{"text": "a"}, "line 2 is blank", {"text": "b"}, "line 4 is blank", {"text": "c"}]


def test_bad_lines_are_line_errors_in_place():
    body = (b'{"text": "a"} x\n'
            b'{"text": NaN}\n'
            b'{"text": "b"}\n'
            b'not json\n' + nested(5000) + b"\n"
            b'[1, 2]\n')
    assert messages(codecs.decode_jsonlines(body)) == [
        "line 1 is not valid JSON: Extra data at line 1 column 15",
        "NaN is not valid JSON (NaN and Infinity are not allowed)",
        {"text": "b"},
        "line 4 is not valid JSON: Expecting value at line 1 column 1",
        "line 5 is nested too deeply",
        [1, 2],  # valid JSON: the service says that it is not an object
    ]


def test_a_truncated_last_line_is_a_line_error():
    records = codecs.decode_jsonlines(b'{"text": "a"}\n{"text": "b"}\n{"text": "c')
    assert records[:2] == [{"text": "a"}, {"text": "b"}]
    assert len(records) == 3 and isinstance(records[2], LineError)
    assert records[2].message.startswith("line 3 is not valid JSON: Unterminated string starting at")
    assert records[2].message.endswith("line 1 column 10")


def test_truncated_line_message_reads_well():
    records = codecs.decode_jsonlines(b'{"text": "c')
    assert records[0].message == "line 1 is not valid JSON: Unterminated string starting at line 1 column 10"


@pytest.mark.parametrize("body,message", [
    (b"", "body is empty"),
    (b"\n\r\n  \n", "body is empty"),
    (None, "body is empty"),
    ({"text": "a"}, "application/jsonlines body must be text, one JSON object per line"),
    ([{"text": "a"}], "application/jsonlines body must be text, one JSON object per line"),
    (b'{"text": "a"}\n{"text": "\xfe"}\n', "body is not valid UTF-8 (byte 0xfe at offset 24)"),
])
def test_jsonlines_body_errors(body, message):
    with pytest.raises(BadRequest) as info:
        codecs.decode_jsonlines(body)
    assert info.value.message == message


# -- encoders -----------------------------------------------------------------------------------------------------
ITEMS = [{"pred": "caf\u00e9 \u6771\u4eac", "proba": 0.25}, {"pred": ["a", "b"], "proba": [0.5, 1.0]},
         {"error": "record 2: text is empty", "record": 2}, {"pred": "line\nbreak"}]


def test_encode_json_round_trips_and_keeps_non_ascii():
    body = codecs.encode(JSON, ITEMS)
    assert isinstance(body, bytes)
    assert json.loads(body.decode("utf-8")) == {"predictions": ITEMS}
    assert "caf\u00e9 \u6771\u4eac".encode("utf-8") in body and b"\\u" not in body


def test_encode_jsonlines_one_line_per_item_ending_with_a_newline():
    body = codecs.encode_jsonlines(ITEMS)
    assert body.endswith(b"\n")
    lines = body.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(ITEMS) + 1
    assert [json.loads(line) for line in lines[:-1]] == ITEMS
    assert "caf\u00e9 \u6771\u4eac".encode("utf-8") in body and b"\\u" not in body
    assert codecs.encode_jsonlines([]) == b""


def test_unterminated_jsonlines_end_without_a_newline():
    # Batch Transform with AssembleWith=Line appends a newline to every response itself
    body = codecs.encode_jsonlines(ITEMS, terminated=False)
    assert not body.endswith(b"\n") and [json.loads(line) for line in body.split(b"\n")] == ITEMS
    assert body + b"\n" == codecs.encode_jsonlines(ITEMS)
    assert codecs.encode(JSON, ITEMS, terminated=False) == codecs.encode(JSON, ITEMS)
    error = {"error": "x", "record": 0}
    assert codecs.encode_error(error, JSONLINES, terminated=False) == json.dumps(error).encode("utf-8")


def test_jsonlines_answer_decodes_back_line_for_line():
    assert codecs.decode_jsonlines(codecs.encode_jsonlines(ITEMS)) == ITEMS


@pytest.mark.parametrize("media", [JSON, JSONLINES])
def test_encoders_refuse_nan(media):
    with pytest.raises(ValueError):
        codecs.encode(media, [{"proba": float("nan")}])


def test_encode_error_in_either_format():
    error = {"error": "record 1: text is empty \u2014 d\u00e9j\u00e0", "record": 1}
    assert codecs.encode_error(error, JSON) == json.dumps(error, ensure_ascii=False).encode("utf-8")
    assert codecs.encode_error(error, JSONLINES) == json.dumps(error, ensure_ascii=False).encode("utf-8") + b"\n"


def test_codec_tables_cover_every_canonical_type():
    assert set(codecs.DECODERS) == set(codecs.MEDIA_TYPES.values()) == {JSON, JSONLINES}
    # and the answer side (codecs.encode, through AnswerWriter) writes each of them as its own format
    read_back = {JSON: lambda body: json.loads(body)["predictions"], JSONLINES: codecs.decode_jsonlines}
    for media in codecs.MEDIA_TYPES.values():
        assert read_back[media](codecs.encode(media, ITEMS)) == ITEMS
