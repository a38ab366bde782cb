"""Building one validated record from a training row or a request record: the same checks for both.

The record's own fields (texts, boxes) are checked by ``tasks.fields``; its label by the task's row of the task
table, which also says which text fields the task reads (``text``, or ``text`` and ``text_pair``).
"""
from __future__ import annotations

from typing import Any, Mapping

from tasks.errors import RecordError
from tasks.fields import Label, Record, check_text, parse_bbox, split_words
from tasks.kinds import TaskKind, task_kind


def parse_label(task: str, raw: str) -> Label:
    """The gold label of a training row, from its ``labels`` column."""
    return task_kind(task).parse_label(raw)


def make_record(task: str | TaskKind, use_bbox: bool, fields: Mapping[str, Any], raw_label: str | None = None
                ) -> Record:
    """A validated record from ``fields`` (a training row's columns or a request's JSON object): the task's
    text fields, then ``raw_label`` (training only), then ``bbox`` when the model reads boxes. Other keys are
    ignored. ``task``: its row, where the caller resolved it once for many records, or its name."""
    kind = task if isinstance(task, TaskKind) else task_kind(task)
    texts = {name: check_text(fields.get(name), name) for name in kind.inputs}
    record = Record(text=texts["text"], text_pair=texts.get("text_pair"))
    if raw_label is not None:
        record.label = kind.parse_label(raw_label)
        kind.check_label(record)
    if use_bbox:
        bbox = fields.get("bbox")
        if bbox is None:
            raise RecordError("bbox", "bbox is required: this model reads one [x0, y0, x1, y1] box per word")
        record.bbox = parse_bbox(bbox, len(split_words(record.text)))
    return record
