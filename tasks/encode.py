"""Records -> model features, the way the task's row says (``TaskKind.encode``); see ``tasks.features``."""
from __future__ import annotations

from functools import partial
from typing import Any

from tasks.features import Feature
from tasks.fields import Record
from tasks.kinds import task_kind
from tasks.spec import TaskSpec


def encode(spec: TaskSpec, tokenizer: Any, records: list[Record], with_labels: bool = False) -> list[Feature]:
    """Model features for ``records``, in record order (a record's windows are consecutive)."""
    kind = task_kind(spec.task)
    target = partial(kind.target, spec.labels) if with_labels else None
    return kind.encode(spec, tokenizer, records, target)
