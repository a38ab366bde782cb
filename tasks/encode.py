"""Records -> model features, the way the task's row says (``TaskKind.encode``); see ``tasks.features``."""
from __future__ import annotations

from functools import partial
from typing import Any

from tasks.features import Feature
from tasks.fields import Record
from tasks.kinds import TaskLike, as_resolved


def encode(task: TaskLike, tokenizer: Any, records: list[Record], with_labels: bool = False) -> list[Feature]:
    """Model features for ``records``, in record order (a record's windows are consecutive)."""
    resolved = as_resolved(task)
    kind, spec = resolved.kind, resolved.spec
    target = partial(kind.target, spec.labels) if with_labels else None
    return kind.encode(spec, tokenizer, records, target)
