"""tasks.records: parsing and validating one record's text, labels and boxes (training rows and requests)."""
from __future__ import annotations

import pytest

from tasks.errors import RecordError
from tasks.fields import Record, check_text, parse_bbox, split_words
from tasks.records import make_record, parse_label


def _error(fn, *args, **kwargs) -> RecordError:
    with pytest.raises(RecordError) as info:
        fn(*args, **kwargs)
    return info.value


def test_split_words_splits_on_any_whitespace():
    assert split_words("Alice  Martin\tjoined\nAcme ") == ["Alice", "Martin", "joined", "Acme"]


def test_record_error_is_a_value_error_carrying_field_and_message():
    err = RecordError("bbox", "bad box")
    assert isinstance(err, ValueError)
    assert (err.field, err.message, str(err)) == ("bbox", "bad box", "bad box")


# ---- labels -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("pos", "pos"),
    ('"My category"', "My category"),
    ('  "My category"  ', "My category"),
    ('"say ""hi"""', 'say "hi"'),
    ('"unbalanced', '"unbalanced'),
])
def test_classif_label(raw, expected):
    assert parse_label("classif", raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", '""'])
def test_classif_empty_label_is_refused(raw):
    err = _error(parse_label, "classif", raw)
    assert (err.field, err.message) == ("labels", "empty label; expected one class name")


@pytest.mark.parametrize("raw, expected", [
    ('"a","b"', ["a", "b"]),
    ('"a", "b"', ["a", "b"]),
    ("a,b", ["a", "b"]),
    ('"My cat","b"', ["My cat", "b"]),
    ('"x, y","b"', ["x, y", "b"]),
    ('"only"', ["only"]),
    ("", []),
    ("   ", []),
])
def test_multilabel_labels(raw, expected):
    assert parse_label("multilabel-classif", raw) == expected


def test_multilabel_empty_item_is_refused():
    err = _error(parse_label, "multilabel-classif", '"a",')
    assert err.field == "labels"
    assert err.message == "empty label in '\"a\",'; expected comma-separated quoted labels like \"a\",\"b\""


def test_multilabel_repeated_label_is_refused():
    err = _error(parse_label, "multilabel-classif", '"a","b","a"')
    assert (err.field, err.message) == ("labels", "a label is repeated in '\"a\",\"b\",\"a\"'")


@pytest.mark.parametrize("raw, expected", [("3.5", 3.5), (" -2 ", -2.0), ("1e-3", 0.001), ("0", 0.0)])
def test_regression_label(raw, expected):
    value = parse_label("regression", raw)
    assert isinstance(value, float) and value == expected


@pytest.mark.parametrize("raw, message", [
    ("abc", "'abc' is not a number"),
    ("", "'' is not a number"),
    ("1,5", "'1,5' is not a number"),
    ("nan", "'nan' is not a finite number"),
    ("-inf", "'-inf' is not a finite number"),
])
def test_regression_label_errors(raw, message):
    err = _error(parse_label, "regression", raw)
    assert (err.field, err.message) == ("labels", message)


def test_ner_labels():
    assert parse_label("ner", "O B-PER  I-PER B-WORK-OF-ART") == ["O", "B-PER", "I-PER", "B-WORK-OF-ART"]


@pytest.mark.parametrize("bad", ["B-", "PER", "b-per", "I_PER", "o"])
def test_ner_label_that_is_not_bio_is_refused(bad):
    err = _error(parse_label, "ner", f"O {bad} O")
    assert (err.field, err.message) == ("labels", f"{bad!r} is not a BIO label (O, B-TYPE or I-TYPE)")


# ---- boxes --------------------------------------------------------------------------------------------------

def test_bbox_from_training_string():
    assert parse_bbox("10 20 30 40,50 60 70 80", 2) == [(10, 20, 30, 40), (50, 60, 70, 80)]


def test_bbox_from_request_lists_accepts_whole_floats():
    assert parse_bbox([[0, 0, 1000, 1000], [1.0, 2.0, 3, 4]], 2) == [(0, 0, 1000, 1000), (1, 2, 3, 4)]


def test_bbox_empty_string_for_no_words():
    assert parse_bbox("", 0) == []


@pytest.mark.parametrize("raw, n_words, message", [
    ("10 20 30 40", 2, "1 boxes for 2 words; expected one box per word"),
    ("", 1, "0 boxes for 1 words; expected one box per word"),
    ("1 2 3 4,5 6 7 8", 1, "2 boxes for 1 words; expected one box per word"),
    ("1 2 3", 1, "box 0 must have 4 integers x0 y0 x1 y1, got [1, 2, 3]"),
    ("1 2 3 4,", 2, "box 1 must have 4 integers x0 y0 x1 y1, got []"),
    ("1 2 3 4,5 6 x 8", 2, "box 1 '5 6 x 8' is not four integers x0 y0 x1 y1"),
    ("1.5 2 3 4", 1, "box 0 '1.5 2 3 4' is not four integers x0 y0 x1 y1"),
    ("0 0 1001 10", 1, "box 0 [0, 0, 1001, 10] has a coordinate outside 0-1000"),
    ("-1 0 10 10", 1, "box 0 [-1, 0, 10, 10] has a coordinate outside 0-1000"),
    ("0 0 10 10,50 0 40 10", 2, "box 1 [50, 0, 40, 10] has x1<x0 or y1<y0"),
    ("0 20 10 10", 1, "box 0 [0, 20, 10, 10] has x1<x0 or y1<y0"),
    ([[0, 0, 10, 10.5]], 1, "box 0 has a non-integer coordinate 10.5"),
    ([[0, True, 10, 10]], 1, "box 0 has a non-integer coordinate True"),
    ([[0, "0", 10, 10]], 1, "box 0 has a non-integer coordinate '0'"),
    ([[0, 0, 10]], 1, "box 0 must have 4 integers x0 y0 x1 y1, got [0, 0, 10]"),
    ([5], 1, "box 0 must have 4 integers x0 y0 x1 y1, got 5"),
    ({"x": 1}, 1, "bbox must be a list of [x0, y0, x1, y1] or a string, got dict"),
])
def test_bbox_errors(raw, n_words, message):
    err = _error(parse_bbox, raw, n_words)
    assert (err.field, err.message) == ("bbox", message)


# ---- text and whole records ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    (None, "text is missing"),
    (5, "text must be a string, got int"),
    (["a"], "text must be a string, got list"),
    ("", "text is empty"),
    (" \t\n", "text is empty"),
])
def test_text_errors(text, message):
    err = _error(check_text, text)
    assert (err.field, err.message) == ("text", message)


def test_make_record_without_label_for_serving():
    assert make_record("classif", False, {"text": "hello world"}) == Record(text="hello world", bbox=None, label=None)


def test_make_record_ner_with_boxes():
    record = make_record("ner", True, {"text": "Alice joined", "bbox": "0 0 10 10,20 0 30 10"}, "B-PER O")
    assert record == Record(text="Alice joined", bbox=[(0, 0, 10, 10), (20, 0, 30, 10)], label=["B-PER", "O"])


def test_make_record_ignores_boxes_when_the_model_takes_none():
    assert make_record("classif", False, {"text": "a b", "bbox": "not even boxes"}, "x").bbox is None


def test_make_record_ner_label_count_must_match_word_count():
    err = _error(make_record, "ner", False, {"text": "Alice Martin joined"}, "B-PER I-PER")
    assert (err.field, err.message) == ("labels", "2 labels for 3 words; expected one BIO label per word")


def test_make_record_requires_boxes_for_a_box_model():
    err = _error(make_record, "classif", True, {"text": "Alice joined"}, "x")
    assert err.field == "bbox"
    assert err.message == "bbox is required: this model reads one [x0, y0, x1, y1] box per word"


def test_make_record_box_count_must_match_word_count():
    err = _error(make_record, "regression", True, {"text": "one two three", "bbox": [[0, 0, 1, 1]]}, "1.0")
    assert (err.field, err.message) == ("bbox", "1 boxes for 3 words; expected one box per word")


def test_make_record_checks_text_before_labels():
    err = _error(make_record, "ner", False, {"text": "  "}, "B-")
    assert (err.field, err.message) == ("text", "text is empty")
