"""The task spec: the small, versioned file that makes a checkpoint self-describing.

Training writes it next to the weights (``task_spec.json``); the handler reads nothing else to know what to do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.errors import SpecError
from tasks.families import family_for
from tasks.kinds import TASKS, task_kind

SCHEMA_VERSION = 1
TASK_SPEC_FILE = "task_spec.json"
#: the task names, in the table's order (the table is ``tasks.kinds.TASKS``; this is a view of it)
TASK_NAMES = tuple(TASKS)


@dataclass(frozen=True)
class TaskSpec:
    """Everything serving needs to encode a record and decode the model's answer the way training did."""

    task: str
    model_type: str
    labels: tuple[str, ...] = ()
    max_seq_length: int = 256
    stride: int = 32
    use_bbox: bool = False
    #: per-label decision thresholds (tuned on dev by tasks that tune them: multilabel-classif)
    thresholds: dict[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        kind = task_kind(self.task)
        family = family_for(self.model_type)
        if self.use_bbox and not family.bbox:
            raise SpecError(f"use_bbox is true but model_type {self.model_type!r} takes no boxes (use LayoutLM)")
        if self.use_bbox and not kind.takes_bbox:
            raise SpecError(f"use_bbox is true but task {self.task!r} reads no word boxes")
        if kind.has_labels and len(self.labels) < 1:
            raise SpecError(f"task {self.task!r} needs at least one label")
        if not kind.has_labels and self.labels:
            raise SpecError(f"task {self.task!r} takes no labels")
        if len(set(self.labels)) != len(self.labels):
            raise SpecError("labels must be unique")
        if self.max_seq_length < 8:
            raise SpecError(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        # a window must advance: stride tokens overlap, so at least one new token per window
        if not 0 <= self.stride <= (self.max_seq_length - 2) // 2:
            raise SpecError(
                f"stride must be between 0 and {(self.max_seq_length - 2) // 2} for max_seq_length "
                f"{self.max_seq_length}, got {self.stride}"
            )
        unknown = set(self.thresholds) - set(self.labels)
        if unknown:
            raise SpecError(f"thresholds name labels the model does not have: {sorted(unknown)}")
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds.values()):
            raise SpecError("thresholds must lie in [0, 1]")

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if task_kind(self.task).has_labels else 1

    def threshold(self, label: str) -> float:
        return self.thresholds.get(label, 0.5)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        if not isinstance(data, dict):
            raise SpecError("a task spec must be a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SpecError(f"task spec schema_version {version!r} is not supported (this code reads {SCHEMA_VERSION})")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"task spec has unknown fields {sorted(unknown)}")
        missing = {"task", "model_type"} - set(data)
        if missing:
            raise SpecError(f"task spec is missing {sorted(missing)}")
        values = dict(data)
        labels, thresholds = values.get("labels", []), values.get("thresholds", {})
        if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
            raise SpecError(f"task spec labels must be a list of strings, got {labels!r}")
        try:
            if not isinstance(thresholds, dict) or any(isinstance(v, bool) for v in thresholds.values()):
                raise ValueError
            values["thresholds"] = {str(k): float(v) for k, v in thresholds.items()}
        except (TypeError, ValueError):
            raise SpecError(f"task spec thresholds must map labels to numbers, got {thresholds!r}") from None
        values["labels"] = tuple(labels)
        try:
            return cls(**values)
        except TypeError as exc:
            raise SpecError(f"task spec is not valid: {exc}") from None
