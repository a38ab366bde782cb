"""The task table: one row per task. Adding a task is one decode function, one score function and one row."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tasks import decode, metrics
from tasks.errors import SpecError


@dataclass(frozen=True)
class TaskKind:
    name: str
    #: "token" heads answer per token (AutoModelForTokenClassification), "sequence" heads per feature
    head: str
    #: ``config.problem_type`` for sequence heads (drives the loss in transformers)
    problem_type: str | None
    decode: Callable
    score: Callable
    #: the dev metric that picks the best checkpoint and gates quantisation
    primary_metric: str
    greater_is_better: bool


TASKS: dict[str, TaskKind] = {
    "ner": TaskKind("ner", "token", None, decode.decode_ner, metrics.score_ner, "f1", True),
    "classif": TaskKind("classif", "sequence", "single_label_classification", decode.decode_classif,
                        metrics.score_classif, "f1_macro", True),
    "multilabel-classif": TaskKind("multilabel-classif", "sequence", "multi_label_classification",
                                   decode.decode_multilabel, metrics.score_multilabel, "f1_micro", True),
    "regression": TaskKind("regression", "sequence", "regression", decode.decode_regression,
                           metrics.score_regression, "mse", False),
}


def task_kind(name: str) -> TaskKind:
    try:
        return TASKS[name]
    except KeyError:
        raise SpecError(f"task {name!r} is not one of {list(TASKS)}") from None
