"""The task table: one row per task, and the only place that knows which tasks exist.

Each task is a small module here that defines its ``KIND`` (a ``TaskKind`` row, see ``tasks/kinds/base.py``):
how its labels are parsed, validated, ordered and turned into training targets, how its records are encoded,
how model outputs are decoded and scored, the metric names training logs (and SageMaker's MetricDefinitions
match), its primary metric, any tuning after training, and the bits of its model card. Training, serving, the
archive and the launcher ask the row; nothing outside this package compares a task name. ``check_spec`` holds a
task spec (plain data, ``tasks.spec``) against its row, and ``resolve`` does that and hands back the spec with its
row and its model family (``Resolved``), looked up once where a checkpoint is read: the layers above pass that
value along instead of looking the spec's names up again.

Adding a task is one module here with its ``KIND`` and one line in ``TASKS`` below, plus its tests, docs and
example data; shared building blocks (``tasks.features``, ``tasks.decode``, ``tasks.metrics``) are reused where
they fit, the way ``pair_classif`` reuses classif's decoding and scoring.
"""
from __future__ import annotations

from dataclasses import dataclass

from tasks.errors import SpecError
from tasks.families import Family, family_for
from tasks.kinds import classif, multilabel, ner, pair_classif, regression
from tasks.kinds.base import TaskKind
from tasks.spec import TaskSpec

TASKS: dict[str, TaskKind] = {kind.name: kind for kind in (
    ner.KIND,
    classif.KIND,
    multilabel.KIND,
    regression.KIND,
    pair_classif.KIND,
)}
#: the task names, in the table's order
TASK_NAMES = tuple(TASKS)


def task_kind(name: str) -> TaskKind:
    """The row of task ``name``; an unknown name lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise SpecError(f"task {name!r} is not one of {list(TASKS)}") from None


@dataclass(frozen=True)
class Resolved:
    """A task spec with its task's row and its model family's overrides, each looked up once (``resolve``)."""

    spec: TaskSpec
    kind: TaskKind
    family: Family


#: what the shared functions (encoding, prediction, the parity gates) take: the resolved spec, or a bare spec that
#: they resolve themselves (``as_resolved``) for the callers that do not carry a ``Resolved`` yet
TaskLike = TaskSpec | Resolved


def resolve(spec: TaskSpec) -> Resolved:
    """``spec`` checked against its task's row (``check_spec``), with that row and its family."""
    kind = task_kind(spec.task)
    _check(spec, kind)
    return Resolved(spec, kind, family_for(spec.model_type))


def as_resolved(task: TaskLike) -> Resolved:
    """``task`` itself where it is resolved already; a bare spec's row and family, looked up now."""
    if isinstance(task, Resolved):
        return task
    return Resolved(task, task_kind(task.task), family_for(task.model_type))


def check_spec(spec: TaskSpec) -> TaskSpec:
    """``spec`` once it is known to suit its task's row (labels, boxes); SpecError says what does not."""
    _check(spec, task_kind(spec.task))
    return spec


def _check(spec: TaskSpec, kind: TaskKind) -> None:
    if spec.use_bbox and not kind.takes_bbox:
        raise SpecError(f"use_bbox is true but task {spec.task!r} reads no word boxes")
    if kind.has_labels and len(spec.labels) < 1:
        raise SpecError(f"task {spec.task!r} needs at least one label")
    if not kind.has_labels and spec.labels:
        raise SpecError(f"task {spec.task!r} takes no labels")


__all__ = ["TASKS", "TASK_NAMES", "Resolved", "TaskKind", "TaskLike", "as_resolved", "check_spec", "resolve",
           "task_kind"]
