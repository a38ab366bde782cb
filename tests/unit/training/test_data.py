"""training.data: reading and validating train/dev/test.csv, with every problem named by file, line and column."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.fields import Record
from tasks.kinds import task_kind
from tests.helpers import ROOT
from training.data import MAX_PROBLEMS, DataError, Problem, load_dataset

HEADER = "text\tlabels\n"
CLASSIF_OK = HEADER + "good hotel\tpos\nbad meal\tneg\n"


def _folder(tmp_path: Path, train: str | bytes = CLASSIF_OK, dev: str | bytes | None = CLASSIF_OK,
            test: str | bytes | None = CLASSIF_OK) -> Path:
    """A data folder; ``None`` leaves that file out."""
    for name, content in (("train", train), ("dev", dev), ("test", test)):
        if content is not None:
            path = tmp_path / f"{name}.csv"
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8", newline="")
            else:
                path.write_bytes(content)
    return tmp_path


def _problems(folder: Path, task: str = "classif", **kwargs) -> list[str]:
    with pytest.raises(DataError) as info:
        load_dataset(folder, task, **kwargs)
    return [str(p) for p in info.value.problems]


# ---- valid data ----------------------------------------------------------------------------------------------------

def test_classif_loads_with_quoted_labels(tmp_path):
    train = HEADER + 'good hotel\t"My category"\nbad meal\tother\nfine\t "My category" \n'
    data = load_dataset(_folder(tmp_path, train, HEADER + 'ok\t"other"\n', HEADER + "x\tMy category\n"), "classif")
    assert data.labels == ("My category", "other")
    assert [r.label for r in data.train] == ["My category", "other", "My category"]
    assert data.dev == [Record(text="ok", bbox=None, label="other")]
    assert data.test[0].label == "My category"


def test_multilabel_quoted_lists_and_the_empty_set(tmp_path):
    train = HEADER + 'a review\t"price","service"\nanother\t\nthird\tquality\n'
    data = load_dataset(_folder(tmp_path, train=train, dev=HEADER + 'x\t"price"\n', test=HEADER + "y\t\n"),
                        "multilabel-classif")
    assert [r.label for r in data.train] == [["price", "service"], [], ["quality"]]
    assert data.labels == ("price", "quality", "service")
    assert data.test[0].label == []


def test_regression_loads_floats_and_has_no_labels(tmp_path):
    rows = HEADER + "good\t4.5\nbad\t-1\n"
    data = load_dataset(_folder(tmp_path, rows, rows, rows), "regression")
    assert [r.label for r in data.train] == [4.5, -1.0]
    assert data.labels == ()


def test_ner_labels_are_o_first_then_by_type_b_before_i(tmp_path):
    train = HEADER + "Alice Martin in Paris\tB-PER I-PER O B-LOC\nNew York Acme\tB-LOC I-LOC B-ORG\n"
    dev = HEADER + "Bob\tB-PER\n"
    data = load_dataset(_folder(tmp_path, train, dev, dev), "ner")
    assert data.labels == ("O", "B-LOC", "I-LOC", "B-ORG", "B-PER", "I-PER")
    assert data.train[0].label == ["B-PER", "I-PER", "O", "B-LOC"]


def test_the_task_row_orders_the_labels():
    """The order load_dataset gives a model's outputs (Dataset.labels), from the task's row."""
    assert task_kind("ner").order_labels({"I-PER", "B-PER", "B-LOC"}) == ("O", "B-LOC", "B-PER", "I-PER")
    assert task_kind("classif").order_labels({"b", "a", "C"}) == ("C", "a", "b")


def test_layoutlm_boxes_are_read_from_the_bbox_column(tmp_path):
    rows = "text\tlabels\tbbox\nAlice joined\tB-PER O\t0 0 10 10,20 0 30 10\n"
    data = load_dataset(_folder(tmp_path, rows, rows, rows), "ner", use_bbox=True)
    assert data.train[0].bbox == [(0, 0, 10, 10), (20, 0, 30, 10)]


def test_bbox_column_is_ignored_when_boxes_are_not_used(tmp_path):
    rows = "text\tlabels\tbbox\ngood\tpos\tnonsense\nbad\tneg\t\n"
    data = load_dataset(_folder(tmp_path, rows, rows, rows), "classif")
    assert [r.bbox for r in data.train] == [None, None]


def test_bom_and_crlf_are_accepted(tmp_path):
    content = "\ufefftext\tlabels\r\ngood hotel\tpos\r\nbad meal\tneg\r\n".encode("utf-8")
    data = load_dataset(_folder(tmp_path, content, content, content), "classif")
    assert [(r.text, r.label) for r in data.train] == [("good hotel", "pos"), ("bad meal", "neg")]


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    train = HEADER + "good\tpos\n\n   \nbad meal\tneg\n\nworse\tmeh\tx\n"
    assert _problems(_folder(tmp_path, train=train)) == [
        "train.csv, line 7: has 3 tab-separated fields, expected 2 (text, labels); is there a tab inside the text?",
    ]


def test_quotes_are_ordinary_characters_in_text(tmp_path):
    train = HEADER + 'he said "hi\tpos\n"quoted text"\tneg\n'
    data = load_dataset(_folder(tmp_path, train=train), "classif")
    assert [r.text for r in data.train] == ['he said "hi', '"quoted text"']


def test_unicode_line_separators_inside_text_do_not_split_the_row(tmp_path):
    train = HEADER + "hello\u2028world\tpos\npage\x0cbreak\tneg\n"
    data = load_dataset(_folder(tmp_path, train=train), "classif")
    assert [r.text for r in data.train] == ["hello\u2028world", "page\x0cbreak"]


# ---- every problem, named -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, row, expected", [
    ("ner", "Alice Martin joined\tB-PER I-PER",
     "train.csv, line 3, column labels: 2 labels for 3 words; expected one BIO label per word"),
    ("ner", "Alice joined\tB-PER X",
     "train.csv, line 3, column labels: 'X' is not a BIO label (O, B-TYPE or I-TYPE)"),
    ("regression", "good\tabc", "train.csv, line 3, column labels: 'abc' is not a number"),
    ("regression", "good\t", "train.csv, line 3, column labels: '' is not a number"),
    ("classif", "   \tpos", "train.csv, line 3, column text: text is empty"),
    ("classif", "good\t", "train.csv, line 3, column labels: empty label; expected one class name"),
    ("multilabel-classif", 'good\t"a","a"', "train.csv, line 3, column labels: a label is repeated in '\"a\",\"a\"'"),
    ("classif", "a tab\tinside\tpos",
     "train.csv, line 3: has 3 tab-separated fields, expected 2 (text, labels); is there a tab inside the text?"),
    ("classif", "no label column",
     "train.csv, line 3: has 1 tab-separated fields, expected 2 (text, labels); "
     "is a column missing, or separated by spaces instead of a tab?"),
])
def test_row_problems(tmp_path, task, row, expected):
    first = {"ner": "Bob\tB-PER", "regression": "ok\t1", "classif": "ok\tpos",
             "multilabel-classif": 'ok\t"a"'}[task]
    train = HEADER + first + "\n" + row + "\n"
    assert _problems(_folder(tmp_path, train=train, dev=HEADER + first, test=HEADER + first), task) == [expected]


BOX_OK = "text\tlabels\tbbox\nBob ran\tB-PER O\t1 1 2 2,3 3 4 4\n"


@pytest.mark.parametrize("row, expected", [
    ("Alice joined\tB-PER O\t0 0 10 10",
     "train.csv, line 3, column bbox: 1 boxes for 2 words; expected one box per word"),
    ("Alice joined\tB-PER O\t0 0 10 10,0 0 1001 10",
     "train.csv, line 3, column bbox: box 1 [0, 0, 1001, 10] has a coordinate outside 0-1000"),
    ("Alice joined\tB-PER O\t50 0 40 10,0 0 10 10",
     "train.csv, line 3, column bbox: box 0 [50, 0, 40, 10] has x1<x0 or y1<y0"),
    ("Alice joined\tB-PER O\t0 0 10 10,a b c d",
     "train.csv, line 3, column bbox: box 1 'a b c d' is not four integers x0 y0 x1 y1"),
])
def test_box_problems(tmp_path, row, expected):
    train = BOX_OK + row + "\n"
    assert _problems(_folder(tmp_path, train, BOX_OK, BOX_OK), "ner", use_bbox=True) == [expected]


def test_box_column_required_when_boxes_are_used(tmp_path):
    assert _problems(_folder(tmp_path, BOX_OK, BOX_OK, HEADER + "Bob\tB-PER\n"), "ner", use_bbox=True) == [
        "test.csv, line 1: missing column(s) ['bbox']; expected tab-separated columns text, labels, bbox",
    ]


@pytest.mark.parametrize("header, expected", [
    ("text\tlabel", "missing column(s) ['labels']; unknown column(s) ['label']"),
    ("text", "missing column(s) ['labels']"),
    ("text\tlabels\tid", "unknown column(s) ['id']"),
])
def test_column_problems(tmp_path, header, expected):
    dev = header + "\ngood\tpos\n"
    assert _problems(_folder(tmp_path, dev=dev)) == [
        f"dev.csv, line 1: {expected}; expected tab-separated columns text, labels and optionally bbox",
    ]


def test_missing_files(tmp_path):
    assert _problems(_folder(tmp_path, dev=None, test=None)) == [
        f"dev.csv: is missing from {tmp_path}",
        f"test.csv: is missing from {tmp_path}",
    ]


def test_a_directory_is_not_a_data_file(tmp_path):
    (tmp_path / "test.csv").mkdir()
    assert _problems(_folder(tmp_path, test=None)) == [f"test.csv: is missing from {tmp_path}"]


def test_non_utf8_bytes_name_the_line(tmp_path):
    test = b"text\tlabels\nok\tpos\nbad \xff byte\tneg\n"
    assert _problems(_folder(tmp_path, test=test)) == [
        "test.csv, line 3: is not valid UTF-8 (byte 0xff at offset 23)",
    ]


def test_an_unreadable_train_file_does_not_flag_every_dev_and_test_label(tmp_path):
    train = b"text\tlabels\nok\tpos\nbad \xff byte\tneg\n"
    assert _problems(_folder(tmp_path, train=train)) == [
        "train.csv, line 3: is not valid UTF-8 (byte 0xff at offset 23)",
    ]


def test_empty_file(tmp_path):
    assert _problems(_folder(tmp_path, dev="")) == [
        "dev.csv, line 1: is empty; expected a header row with columns text and labels",
    ]


def test_header_only(tmp_path):
    assert _problems(_folder(tmp_path, test=HEADER)) == ["test.csv, line 2: has a header but no data rows"]
    assert _problems(_folder(tmp_path, test=HEADER + "\n\n")) == ["test.csv, line 2: has a header but no data rows"]


def test_a_malformed_only_row_is_not_reported_as_no_data_rows(tmp_path):
    assert _problems(_folder(tmp_path, dev=HEADER + "a tab\there\tpos\n")) == [
        "dev.csv, line 2: has 3 tab-separated fields, expected 2 (text, labels); is there a tab inside the text?",
    ]


def test_labels_in_dev_and_test_must_appear_in_train(tmp_path):
    dev = HEADER + "fine\tpos\nmeh\tneutral\n"
    test = HEADER + "meh\tneutral\nwow\tgreat\n"
    assert _problems(_folder(tmp_path, dev=dev, test=test)) == [
        "dev.csv, line 3, column labels: label(s) ['neutral'] never appear in train.csv",
        "test.csv, line 2, column labels: label(s) ['neutral'] never appear in train.csv",
        "test.csv, line 3, column labels: label(s) ['great'] never appear in train.csv",
    ]


def test_unseen_labels_for_multilabel_and_ner(tmp_path):
    train = HEADER + 'x\t"a"\ny\t"b"\n'
    dev = HEADER + 'z\t"a","z","y"\n'
    assert _problems(_folder(tmp_path, train, dev, train), "multilabel-classif") == [
        "dev.csv, line 2, column labels: label(s) ['y', 'z'] never appear in train.csv",
    ]
    ner_train, ner_dev = HEADER + "Bob\tB-PER\n", HEADER + "Bob ran\tI-PER O\nParis\tB-LOC\n"
    assert _problems(_folder(tmp_path, ner_train, ner_dev, ner_train), "ner") == [
        "dev.csv, line 2, column labels: label(s) ['I-PER'] never appear in train.csv",
        "dev.csv, line 3, column labels: label(s) ['B-LOC'] never appear in train.csv",
    ]


def test_classif_needs_two_classes(tmp_path):
    one = HEADER + "good\tpos\n"
    assert _problems(_folder(tmp_path, one, one, one)) == [
        "train.csv, column labels: classif needs at least 2 classes, found ['pos']",
    ]


def test_several_problems_are_reported_together(tmp_path):
    train = HEADER + "good\tpos\n\tneg\nbad\t\nfine\tneg\n"
    dev = b"text\tlabels\n\xc3(\tpos\n"
    assert _problems(_folder(tmp_path, train=train, dev=dev, test=None)) == [
        "train.csv, line 3, column text: text is empty",
        "train.csv, line 4, column labels: empty label; expected one class name",
        "dev.csv, line 2: is not valid UTF-8 (byte 0xc3 at offset 12)",
        f"test.csv: is missing from {tmp_path}",
    ]


def test_problems_stop_at_the_cap(tmp_path):
    train = HEADER + "good\tpos\n" + "".join(f"row {i}\t\n" for i in range(5))
    folder = _folder(tmp_path, train=train, dev=None)
    with pytest.raises(DataError) as info:
        load_dataset(folder, "classif", max_problems=3)
    err = info.value
    assert err.truncated is True
    assert [p.line for p in err.problems] == [3, 4, 5]
    assert str(err).splitlines()[0] == "invalid training data:"
    assert str(err).splitlines()[-1] == "... stopped after 3 problems"
    assert len(str(err).splitlines()) == 5


def test_default_cap(tmp_path):
    train = HEADER + "".join(f"row {i}\t\n" for i in range(MAX_PROBLEMS + 10))
    with pytest.raises(DataError) as info:
        load_dataset(_folder(tmp_path, train=train), "classif")
    assert (MAX_PROBLEMS, len(info.value.problems), info.value.truncated) == (50, 50, True)


def test_problems_under_the_cap_are_not_truncated(tmp_path):
    train = HEADER + "good\tpos\nbad\tneg\n" + "".join(f"row {i}\t\n" for i in range(3))
    with pytest.raises(DataError) as info:
        load_dataset(_folder(tmp_path, train=train), "classif", max_problems=3)
    assert (len(info.value.problems), info.value.truncated) == (3, False)
    assert "stopped after" not in str(info.value)


def test_problem_string_forms():
    assert str(Problem("train.csv", 4, "bbox", "bad")) == "train.csv, line 4, column bbox: bad"
    assert str(Problem("train.csv", None, "labels", "bad")) == "train.csv, column labels: bad"
    assert str(Problem("dev.csv", None, None, "bad")) == "dev.csv: bad"
    assert isinstance(DataError([]), ValueError)


def test_ner_labels_loaded_for_classification_are_refused_naming_the_task(tmp_path):
    # each tag sequence would become a class of its own and training would "succeed"
    folder = shutil.copytree(ROOT / "examples" / "data" / "ner", tmp_path / "ner")
    with pytest.raises(DataError) as info:
        load_dataset(folder, "classif")
    assert "train.csv, line 2, column labels: every row's labels look like ner labels, not classif labels; " \
           "is the task right?" in str(info.value)
    assert load_dataset(folder, "ner").labels[0] == "O"
    classif = load_dataset(ROOT / "examples" / "data" / "classif", "classif")  # real classes are not mistaken
    assert len(classif.labels) >= 2
