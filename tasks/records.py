"""Parsing and validating one record's fields, shared by the training files and the serving requests.

A training row stores labels and boxes as strings (``"a","b"``, ``10 20 30 40,50 60 70 80``); a request may
send boxes as JSON lists. Both go through the same checks so that a record the server accepts is one training
would have accepted.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from typing import Any, Union

from tasks.errors import RecordError

Box = tuple[int, int, int, int]
Label = Union[str, list[str], float]


@dataclass
class Record:
    """One input: its text, optional word boxes, and (in training) its gold label."""

    text: str
    bbox: list[Box] | None = None
    label: Label | None = None


def split_words(text: str) -> list[str]:
    """NER words: whitespace-separated tokens (the training files use single spaces)."""
    return text.split()


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def _parse_multilabel(raw: str) -> list[str]:
    if not raw.strip():
        return []
    row = next(csv.reader([raw], skipinitialspace=True))
    labels = [item.strip() for item in row]
    if any(not item for item in labels):
        raise RecordError("labels", f"empty label in {raw!r}; expected comma-separated quoted labels like \"a\",\"b\"")
    if len(set(labels)) != len(labels):
        raise RecordError("labels", f"a label is repeated in {raw!r}")
    return labels


def _parse_classif(raw: str) -> str:
    label = _unquote(raw)
    if not label:
        raise RecordError("labels", "empty label; expected one class name")
    return label


def _parse_regression(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise RecordError("labels", f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError("labels", f"{raw!r} is not a finite number")
    return value


def _parse_ner(raw: str) -> list[str]:
    labels = raw.split()
    for label in labels:
        if label != "O" and not (label[:2] in ("B-", "I-") and len(label) > 2):
            raise RecordError("labels", f"{label!r} is not a BIO label (O, B-TYPE or I-TYPE)")
    return labels


_LABEL_PARSERS = {
    "ner": _parse_ner,
    "classif": _parse_classif,
    "multilabel-classif": _parse_multilabel,
    "regression": _parse_regression,
}


def parse_label(task: str, raw: str) -> Label:
    """The gold label of a training row, from its ``labels`` column."""
    return _LABEL_PARSERS[task](raw)


def _check_box(box: Any, index: int) -> Box:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise RecordError("bbox", f"box {index} must have 4 integers x0 y0 x1 y1, got {box!r}")
    values = []
    for v in box:
        # bool is an int subclass; a float such as 10.0 is accepted only when whole
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise RecordError("bbox", f"box {index} has a non-integer coordinate {v!r}")
        values.append(int(v))
    x0, y0, x1, y1 = values
    if any(not 0 <= v <= 1000 for v in values):
        raise RecordError("bbox", f"box {index} {values} has a coordinate outside 0-1000")
    if x1 < x0 or y1 < y0:
        raise RecordError("bbox", f"box {index} {values} has x1<x0 or y1<y0")
    return (x0, y0, x1, y1)


def _boxes_from_string(raw: str) -> list[list[Any]]:
    boxes = []
    for index, part in enumerate(raw.split(",")):
        fields = part.split()
        try:
            boxes.append([int(f) for f in fields])
        except ValueError:
            raise RecordError("bbox", f"box {index} {part.strip()!r} is not four integers x0 y0 x1 y1") from None
    return boxes


def parse_bbox(raw: Any, n_words: int) -> list[Box]:
    """Word boxes from the training file's string form or a request's list of lists; one box per word."""
    if isinstance(raw, str):
        items: Any = _boxes_from_string(raw) if raw.strip() else []
    elif isinstance(raw, list):
        items = raw
    else:
        raise RecordError("bbox", f"bbox must be a list of [x0, y0, x1, y1] or a string, got {type(raw).__name__}")
    boxes = [_check_box(box, i) for i, box in enumerate(items)]
    if len(boxes) != n_words:
        raise RecordError("bbox", f"{len(boxes)} boxes for {n_words} words; expected one box per word")
    return boxes


def check_text(text: Any) -> str:
    """The record's text, or a RecordError naming what is wrong with it."""
    if not isinstance(text, str):
        problem = "text is missing" if text is None else f"text must be a string, got {type(text).__name__}"
        raise RecordError("text", problem)
    if not text.strip():
        raise RecordError("text", "text is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800"): no tokenizer can read it
        raise RecordError("text", f"text has an unpaired surrogate at character {exc.start}") from None
    return text


def make_record(task: str, use_bbox: bool, text: Any, bbox: Any = None, raw_label: str | None = None) -> Record:
    """A validated record: the same checks for a training row and for a request record."""
    text = check_text(text)
    n_words = len(split_words(text))
    label = None
    if raw_label is not None:
        label = parse_label(task, raw_label)
        if task == "ner" and len(label) != n_words:
            raise RecordError("labels", f"{len(label)} labels for {n_words} words; expected one BIO label per word")
    boxes = None
    if use_bbox:
        if bbox is None:
            raise RecordError("bbox", "bbox is required: this model reads one [x0, y0, x1, y1] box per word")
        boxes = parse_bbox(bbox, n_words)
    return Record(text=text, bbox=boxes, label=label)
