"""The fields of one record -- texts and word boxes -- and the checks every task applies to them.

A training row stores boxes as a string (``10 20 30 40,50 60 70 80``); a request may send them as JSON lists.
Both go through the same checks so that a record the server accepts is one training would have accepted. Label
parsing is each task's own (``tasks/kinds/``); this module knows nothing about tasks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.errors import RecordError

Box = tuple[int, int, int, int]
Label = str | list[str] | float


@dataclass
class Record:
    """One input: its text (and second text for pair tasks), optional word boxes, and (in training) its gold label."""

    text: str
    bbox: list[Box] | None = None
    label: Label | None = None
    #: the second text of a sentence-pair task (``pair-classif``); None for every other task
    text_pair: str | None = None

    def inputs(self) -> dict[str, str]:
        """The record's texts by field name, as a request would send them (``text``, and ``text_pair`` if set)."""
        return {"text": self.text, **({"text_pair": self.text_pair} if self.text_pair is not None else {})}


def label_list(label: Label) -> list[str]:
    """A label that is a list of names (NER's tags, multilabel's classes): those tasks' parsers only make lists."""
    if not isinstance(label, list):
        raise TypeError(f"expected a list of label names, got {label!r}")
    return list(label)


def split_words(text: str) -> list[str]:
    """NER words: whitespace-separated tokens (the training files use single spaces)."""
    return text.split()


def unquote(value: str) -> str:
    """``"a b"`` -> ``a b`` (a doubled quote inside stands for one); an unquoted value is only stripped."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def check_text(text: Any, field: str = "text") -> str:
    """The text of ``field``, or a RecordError naming what is wrong with it."""
    if not isinstance(text, str):
        problem = f"{field} is missing" if text is None else f"{field} must be a string, got {type(text).__name__}"
        raise RecordError(field, problem)
    if not text.strip():
        raise RecordError(field, f"{field} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800"): no tokenizer can read it
        raise RecordError(field, f"{field} has an unpaired surrogate at character {exc.start}") from None
    return text


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
