"""Malformed and hostile requests against a real TorchServe: each gets the status and error text it must get.

One server for the module (tiny BERT classif and NER, tiny LayoutLM NER; server-side batching 8 / 50 ms). The
matrix is a table: one row per request, sent byte for byte with ``http.client`` (no header added behind our
back). After it: the server still answers a good request exactly as before, good requests that share a server
side batch with bad ones succeed, and no request text ever reaches the server log (every body carries a marker).
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import pytest

from handlers.service import Settings
from tests.helpers.serving_fixtures import start_server, train_and_archive

pytestmark = pytest.mark.slow

LIMITS = Settings()  # the server runs with the defaults (no SMTX_* variables)
MARK = f"zq{uuid.uuid4().hex[:10]}"  # in every request text: must never appear in the log
TS_MAX_REQUEST = 6 * 1024 * 1024  # TorchServeConfig's default max_request_size, used by start_server
JSON_CT = {"Content-Type": "application/json"}
JSONL_CT = {"Content-Type": "application/jsonlines"}
MODELS = [("classif", "bert", "classif", "classif", False), ("ner", "bert", "ner", "ner", False),
          ("layoutlm", "layoutlm", "ner", "layoutlm-ner", True)]


def text(words: str = "the team won the final") -> str:
    return f"{words} {MARK}"


def doc(value) -> bytes:
    return json.dumps(value).encode()


def lines(*values) -> bytes:
    return "".join(json.dumps(v) + "\n" for v in values).encode()


BOXES_3 = [[10, 10, 50, 30], [60, 10, 90, 30], [100, 10, 150, 30]]  # for text("alice met"): 3 words


@dataclass(frozen=True)
class Case:
    """One request and what it must get back."""

    id: str
    model: str
    body: bytes | Callable[[], bytes]
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_CT))
    status: int = 400
    #: substring of the "error" text (JSON or jsonlines error body); None: no error check
    error: str | None = None
    #: for a 200: how many outputs (predictions or lines) the answer must hold
    outputs: int | None = None
    #: the answer's content type (prefix) for a 200
    answer_type: str | None = None
    method: str = "POST"

    def payload(self) -> bytes:
        return self.body() if callable(self.body) else self.body


def _huge_text() -> bytes:
    return doc({"text": text("x" * (3 * 1024 * 1024))})


CASES = [
    # -- bodies that are not a JSON document ---------------------------------------------------------------------------
    Case("empty body", "classif", b"", error="body is empty"),
    Case("whitespace body", "classif", b"  \n\t ", error="body is empty"),
    Case("invalid UTF-8", "classif", b'{"text": "caf\xe9 ' + MARK.encode() + b'"}',
         error="body is not valid UTF-8 (byte 0xe9 at offset 13)"),
    Case("UTF-16 body", "classif", doc({"text": text()}).decode().encode("utf-16"), error="not valid UTF-8"),
    Case("UTF-8 BOM (accepted)", "classif", b"\xef\xbb\xbf" + doc({"text": text()}), status=200, outputs=1),
    Case("not JSON", "classif", f"hello {MARK}".encode(), error="body is not valid JSON"),
    Case("truncated JSON", "classif", doc({"data": [{"text": text()}]})[:-3], error="body is not valid JSON"),
    Case("trailing garbage", "classif", doc({"text": text()}) + b" }{", error="Extra data"),
    Case("two documents", "classif", doc({"text": text()}) * 2, error="Extra data"),
    Case("NaN", "classif", b'{"text": "' + MARK.encode() + b'", "w": NaN}', error="NaN and Infinity are not allowed"),
    Case("Infinity", "classif", b'{"data": [{"text": "' + MARK.encode() + b'", "w": Infinity}]}',
         error="NaN and Infinity are not allowed"),
    Case("-Infinity", "classif", b'[{"text": "' + MARK.encode() + b'", "w": -Infinity}]',
         error="NaN and Infinity are not allowed"),
    Case("nested 100 deep", "classif", b'{"text": "' + MARK.encode() + b'", "x": ' + b"[" * 100 + b"]" * 100 + b"}",
         error="nested deeper than 64 levels"),
    Case("nested 100000 deep", "classif", b"[" * 100_000 + b"]" * 100_000, error="nested too deeply"),
    Case("nested objects 5000 deep", "classif", b'{"a":' * 5000 + b"1" + b"}" * 5000, error="nested"),
    # -- JSON of the wrong shape ---------------------------------------------------------------------------------------
    Case("data empty list", "classif", doc({"data": []}), error="no records"),
    Case("data a string", "classif", doc({"data": "x" + MARK}), error="'data' must be a list of records, got str"),
    Case("data null", "classif", doc({"data": None}), error="got NoneType"),
    Case("data an object", "classif", doc({"data": {"text": text()}}), error="got dict"),
    Case("empty list", "classif", b"[]", error="no records"),
    Case("a JSON string", "classif", doc(text()), error="body must be an object with 'data'"),
    Case("JSON null", "classif", b"null", error="got NoneType"),
    Case("a number", "classif", b"42", error="got int"),
    Case("record a number", "classif", doc({"data": [{"text": text()}, 5]}),
         error="record 1: a record must be a JSON object with 'text', got int"),
    Case("text missing", "classif", doc({"data": [{"txt": text()}]}), error="record 0: text is missing"),
    Case("empty object", "classif", b"{}", error="record 0: text is missing"),
    Case("text null", "classif", doc({"text": None, "m": MARK}), error="text is missing"),
    Case("text a number", "classif", doc({"text": 42, "m": MARK}), error="text must be a string, got int"),
    Case("text a float", "classif", doc({"text": 1e308, "m": MARK}), error="text must be a string, got float"),
    Case("text a list", "classif", doc({"text": [text()]}), error="text must be a string, got list"),
    Case("text a bool", "classif", doc({"text": True, "m": MARK}), error="text must be a string, got bool"),
    Case("text empty", "classif", doc({"text": "", "m": MARK}), error="text is empty"),
    Case("text whitespace", "classif", doc({"text": " \t\n\u3000", "m": MARK}), error="text is empty"),
    Case("second record bad", "ner", doc({"data": [{"text": text()}, {"text": ""}]}),
         error="record 1: text is empty"),
    Case("duplicate key, last wins (accepted)", "classif", b'{"text": 5, "text": "' + MARK.encode() + b'"}',
         status=200, outputs=1),
    Case("unknown fields (accepted)", "classif", doc({"text": text(), "id": 7, "meta": {"a": [1]}}), status=200,
         outputs=1),
    Case("all_scores not true (accepted)", "classif", doc({"text": text(), "all_scores": "yes"}), status=200,
         outputs=1),
    Case("control chars, emoji, RTL (accepted)", "ner",
         doc({"text": f"\x00 \x07 \U0001f600 \u05e9\u05dc\u05d5\u05dd \u200b {MARK}"}), status=200, outputs=1),
    # -- sizes ---------------------------------------------------------------------------------------------------------
    Case("text of several MB", "classif", _huge_text, status=413,
         error=f"characters; the limit is {LIMITS.max_text_chars}"),
    Case("text one char over the limit", "classif",
         lambda: doc({"text": MARK + "a" * (LIMITS.max_text_chars + 1 - len(MARK))}), status=413,
         error=f"text has {LIMITS.max_text_chars + 1} characters; the limit is {LIMITS.max_text_chars}"),
    Case("text at the limit (accepted)", "classif",
         lambda: doc({"text": MARK + " a" * ((LIMITS.max_text_chars - len(MARK)) // 2)}), status=200, outputs=1),
    Case("one record over max_records", "classif",
         lambda: doc({"data": [{"text": MARK}] * (LIMITS.max_records + 1)}), status=413,
         error=f"{LIMITS.max_records + 1} records; the limit is {LIMITS.max_records} per request"),
    Case("max_records jsonlines (accepted)", "classif", lambda: lines(*[{"text": MARK}] * LIMITS.max_records),
         headers=dict(JSONL_CT), status=200, outputs=LIMITS.max_records),
    Case("over TorchServe max_request_size", "classif", lambda: b'{"text": "' + b"a" * (TS_MAX_REQUEST + 1024) + b'"}',
         status=413, error=None),
    # -- jsonlines -----------------------------------------------------------------------------------------------------
    Case("jsonlines CRLF (accepted)", "ner", lines({"text": text()}, {"text": text("a b")}).replace(b"\n", b"\r\n"),
         headers=dict(JSONL_CT), status=200, outputs=2, answer_type="application/jsonlines"),
    Case("jsonlines trailing blank lines (accepted)", "ner", lines({"text": text()}) + b"\n\r\n  \n",
         headers=dict(JSONL_CT), status=200, outputs=1),
    Case("jsonlines no final newline (accepted)", "ner", lines({"text": text()}, {"text": text()})[:-1],
         headers=dict(JSONL_CT), status=200, outputs=2),
    Case("jsonlines blank line in the middle", "ner", lines({"text": text()}) + b"\n" + lines({"text": text()}),
         headers=dict(JSONL_CT), error="record 1: line 2 is blank"),
    Case("jsonlines truncated last line", "ner", lines({"text": text()}) + b'{"text": "' + MARK.encode(),
         headers=dict(JSONL_CT), error="record 1: line 2 is not valid JSON"),
    Case("jsonlines trailing garbage", "ner", lines({"text": text()}) + b"garbage " + MARK.encode() + b"\n",
         headers=dict(JSONL_CT), error="line 2 is not valid JSON"),
    Case("jsonlines a line is a list", "ner", lines({"text": text()}, [text()]), headers=dict(JSONL_CT),
         error="record 1: a record must be a JSON object"),
    Case("jsonlines NaN", "ner", lines({"text": text()}) + b'{"text": "x", "w": NaN}\n', headers=dict(JSONL_CT),
         error="NaN and Infinity are not allowed"),
    Case("jsonlines only blank lines", "ner", b"\n\r\n \n", headers=dict(JSONL_CT), error="body is empty"),
    Case("jsonlines BOM (accepted)", "ner", b"\xef\xbb\xbf" + lines({"text": text()}, {"text": text()}),
         headers=dict(JSONL_CT), status=200, outputs=2),
    Case("jsonlines invalid UTF-8", "ner", lines({"text": text()}) + b'{"text": "\xff"}\n', headers=dict(JSONL_CT),
         error="body is not valid UTF-8"),
    Case("jsonlines a JSON document", "ner", doc({"data": [{"text": text()}]}), headers=dict(JSONL_CT),
         error="record 0: text is missing"),
    # -- LayoutLM boxes ------------------------------------------------------------------------------------------------
    Case("bbox good (accepted)", "layoutlm", doc({"text": text("alice met"), "bbox": BOXES_3}), status=200,
         outputs=1),
    Case("bbox string form (accepted)", "layoutlm",
         doc({"text": text("alice met"), "bbox": "10 10 50 30,60 10 90 30,100 10 150 30"}), status=200, outputs=1),
    Case("bbox missing", "layoutlm", doc({"text": text("alice met")}), error="bbox is required"),
    Case("bbox null", "layoutlm", doc({"text": text("alice met"), "bbox": None}), error="bbox is required"),
    Case("bbox too few", "layoutlm", doc({"text": text("alice met"), "bbox": BOXES_3[:2]}),
         error="2 boxes for 3 words; expected one box per word"),
    Case("bbox too many", "layoutlm", doc({"text": text("alice met"), "bbox": BOXES_3 * 2}),
         error="6 boxes for 3 words"),
    Case("bbox 3 coordinates", "layoutlm", doc({"text": text("alice met"), "bbox": [[1, 2, 3]] * 3}),
         error="box 0 must have 4 integers"),
    Case("bbox over 1000", "layoutlm", doc({"text": text("alice met"), "bbox": [[0, 0, 1001, 10]] * 3}),
         error="outside 0-1000"),
    Case("bbox negative", "layoutlm", doc({"text": text("alice met"), "bbox": [[-1, 0, 10, 10]] * 3}),
         error="outside 0-1000"),
    Case("bbox x1 < x0", "layoutlm", doc({"text": text("alice met"), "bbox": [[50, 0, 10, 10]] * 3}),
         error="x1<x0 or y1<y0"),
    Case("bbox fractional", "layoutlm", doc({"text": text("alice met"), "bbox": [[0.5, 0, 10, 10]] * 3}),
         error="non-integer coordinate 0.5"),
    Case("bbox booleans", "layoutlm", doc({"text": text("alice met"), "bbox": [[True, 0, 10, 10]] * 3}),
         error="non-integer coordinate True"),
    Case("bbox 1e400", "layoutlm", b'{"text": "alice met ' + MARK.encode() + b'", "bbox": [[1e400, 0, 1, 1]]}',
         error="NaN and Infinity are not allowed"),
    Case("bbox a number", "layoutlm", doc({"text": text("alice met"), "bbox": 7}), error="bbox must be a list"),
    Case("bbox bad string", "layoutlm", doc({"text": text("alice met"), "bbox": "1 2 3 x"}),
         error="is not four integers"),
    # -- content types and Accept --------------------------------------------------------------------------------------
    Case("content type parameters and casing", "classif", doc({"text": text()}),
         headers={"Content-Type": "Application/JSON ; Charset=UTF-8"}, status=200, outputs=1,
         answer_type="application/json"),
    Case("jsonlines casing and alias", "classif", lines({"text": text()}),
         headers={"content-type": "APPLICATION/X-JSONLINES;charset=utf-8"}, status=200, outputs=1,
         answer_type="application/jsonlines"),
    Case("text/json (accepted)", "classif", doc({"text": text()}), headers={"Content-Type": "text/json"},
         status=200, outputs=1),
    Case("no content type: JSON (accepted)", "classif", doc({"text": text()}), headers={}, status=200, outputs=1),
    Case("empty content type: JSON (accepted)", "classif", doc({"text": text()}), headers={"Content-Type": ""},
         status=200, outputs=1),
    Case("text/csv", "classif", f"{MARK},a\n".encode(), headers={"Content-Type": "text/csv"}, status=415,
         error="content type 'text/csv' is not supported"),
    Case("form urlencoded (curl -d)", "classif", f"text={MARK}".encode(),
         headers={"Content-Type": "application/x-www-form-urlencoded"}, status=415,
         error="'application/x-www-form-urlencoded' is not supported"),
    Case("multipart form", "classif",
         b"--b\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\n" + doc({"text": text()}) + b"\r\n--b--\r\n",
         headers={"Content-Type": "multipart/form-data; boundary=b"}, status=415, error="is not supported"),
    Case("unknown Accept", "classif", doc({"text": text()}), headers={**JSON_CT, "Accept": "text/csv"}, status=406,
         error="cannot answer in 'text/csv'"),
    Case("Accept q=0 for JSON", "classif", doc({"text": text()}), headers={**JSON_CT, "Accept": "application/json;q=0"},
         status=406, error="cannot answer"),
    Case("Accept wildcard", "classif", doc({"text": text()}), headers={**JSON_CT, "Accept": "*/*"}, status=200,
         outputs=1, answer_type="application/json"),
    Case("Accept jsonlines for JSON", "classif", doc({"data": [{"text": text()}] * 3}),
         headers={**JSON_CT, "aCCepT": "application/jsonlines"}, status=200, outputs=3,
         answer_type="application/jsonlines"),
    Case("Accept by q-value", "classif", doc({"text": text()}),
         headers={**JSON_CT, "Accept": "application/json;q=0.2, application/jsonlines;q=0.9"}, status=200, outputs=1,
         answer_type="application/jsonlines"),
    Case("Accept unknown and bad body: 406 first", "classif", b"not json",
         headers={**JSON_CT, "Accept": "image/png"}, status=406, error="cannot answer in 'image/png'"),
    # -- routes --------------------------------------------------------------------------------------------------------
    Case("unknown model", "no-such-model", doc({"text": text()}), status=404, error=None),
]


# -- the server ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir, small_data):
    root = tmp_path_factory.mktemp("matrix")
    for name, arch, task, folder, bbox in MODELS:
        train_and_archive(name, arch, task, small_data(folder), bbox, tiny_model_dir(arch), root)
    log_file = root / "torchserve.log"
    server = start_server(root / "store", root / "work", [f"{m[0]}={m[0]}.mar" for m in MODELS], log_file)
    try:
        for name, *_ in MODELS:
            server.wait_ready(name, timeout=300)
        yield server, log_file, _good_answer(server)  # the fresh server's answer, before any bad request
    finally:
        server.stop()


def send(base: str, path: str, body: bytes, headers: dict[str, str], method: str = "POST",
         timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
    """One request exactly as given (http.client adds only Host and Content-Length)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) and close before it has read an oversized body
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _error_text(body: bytes) -> str:
    first = body.decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else ""
    try:
        value = json.loads(first)
    except ValueError:
        return first
    return value.get("error", "") or value.get("message", "") if isinstance(value, dict) else first


def _outputs(body: bytes, content_type: str) -> list:
    if content_type.startswith("application/jsonlines"):
        return [json.loads(line) for line in body.decode().splitlines()]
    return json.loads(body)["predictions"]


def _check(case: Case, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == case.status, f"{case.id}: {status} {body[:300]!r}"
    if case.error is not None:
        assert case.error in _error_text(body), f"{case.id}: {body[:300]!r}"
    if status == 200:
        ctype = headers.get("content-type", "")
        if case.answer_type:
            assert ctype.startswith(case.answer_type), ctype
        outputs = _outputs(body, ctype)
        assert len(outputs) == case.outputs and all("pred" in o for o in outputs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matrix(served, case):
    server, *_ = served
    status, headers, body = send(server.config.inference_address, f"/predictions/{case.model}", case.payload(),
                                 case.headers, case.method)
    _check(case, status, headers, body)


# -- known bugs: the test as it should be ----------------------------------------------------------------------------
HUGE_INT = b'{"text": "the team won ' + MARK.encode() + b'", "n": ' + b"7" * 5000 + b"}"
SURROGATE = b'{"text": "alice \\ud800 met ' + MARK.encode() + b'"}'


def test_an_integer_too_long_for_python_is_a_400(served):
    server, *_ = served
    status, _, body = send(server.config.inference_address, "/predictions/classif", HUGE_INT, JSON_CT)
    assert status == 400, (status, body)


@pytest.mark.parametrize("model", ["classif", "ner"])
def test_a_lone_surrogate_is_a_400(served, model):
    server, *_ = served
    status, _, body = send(server.config.inference_address, f"/predictions/{model}", SURROGATE, JSON_CT)
    assert status == 400, (status, body)


# -- after the matrix ------------------------------------------------------------------------------------------------
GOOD = {"data": [{"text": f"Alice Martin flew to Paris on monday {MARK}"}, {"text": f"the team won {MARK}"}]}


def _good_answer(server) -> list:
    status, headers, body = send(server.config.inference_address, "/predictions/ner", doc(GOOD), JSON_CT)
    assert status == 200, body
    return json.loads(body)["predictions"]


@pytest.fixture(scope="module")
def before_matrix(served):
    return served[2]


def _concurrently(base: str, requests: list[tuple[str, bytes, dict]]) -> list[tuple[int, bytes, float]]:
    results: list = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def go(i: int) -> None:
        model, body, headers = requests[i]
        barrier.wait()
        started = time.monotonic()
        status, _, out = send(base, f"/predictions/{model}", body, headers)
        results[i] = (status, out, time.monotonic() - started)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return results


BAD_NEIGHBOURS = [c for c in CASES if c.model == "ner" and c.status >= 400]


def test_good_requests_sharing_batches_with_bad_ones_succeed(served, before_matrix):
    """Waves of 8 concurrent requests (the archive's batch size) on NER, good and bad interleaved."""
    server, *_ = served
    for wave in range(3):
        requests = []
        for i in range(8):
            if i % 2 == 0:
                requests.append(("ner", doc(GOOD), JSON_CT))
            else:
                bad = BAD_NEIGHBOURS[(wave * 4 + i // 2) % len(BAD_NEIGHBOURS)]
                requests.append(("ner", bad.payload(), bad.headers))
        results = _concurrently(server.config.inference_address, requests)
        for i, (status, body, _) in enumerate(results):
            if i % 2 == 0:
                assert status == 200, body
                got = json.loads(body)["predictions"]
                assert [p["pred"] for p in got] == [p["pred"] for p in before_matrix]
            else:
                bad = BAD_NEIGHBOURS[(wave * 4 + i // 2) % len(BAD_NEIGHBOURS)]
                _check(bad, status, {}, body)


def test_good_requests_survive_neighbours_that_crash_the_handler(served, before_matrix):
    server, *_ = served
    requests = [("ner", doc(GOOD), JSON_CT) if i % 2 == 0 else ("ner", [HUGE_INT, SURROGATE][i // 2 % 2], JSON_CT)
                for i in range(8)]
    results = _concurrently(server.config.inference_address, requests)
    assert [s for s, _, _ in results] == [200, 400] * 4, [(s, b[:80]) for s, b, _ in results]


def test_the_server_still_answers_correctly_after_the_matrix(served, before_matrix):
    server, *_ = served
    after = _good_answer(server)
    assert [p["pred"] for p in after] == [p["pred"] for p in before_matrix]
    for a, b in zip(after, before_matrix):
        assert a["proba"] == pytest.approx(b["proba"], abs=1e-5)


def test_no_request_text_is_ever_logged(served):
    server, log_file, _ = served
    send(server.config.inference_address, "/ping", b"", {}, method="GET")
    time.sleep(1.0)  # let the last worker lines reach the log
    logged = log_file.read_bytes()
    assert logged, "the server log is empty: the check would prove nothing"
    assert MARK.encode() not in logged, "request text reached the server log"


def test_the_matrix_is_big_enough():
    assert len(CASES) >= 40
    assert {c.status for c in CASES} >= {200, 400, 404, 406, 413, 415}
