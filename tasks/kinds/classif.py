"""``classif``: one label per text (softmax over the classes), scored by accuracy and F1."""
from __future__ import annotations

from typing import Sequence

from tasks.decode import decode_classif
from tasks.errors import RecordError
from tasks.features import sequence_features
from tasks.fields import Label, unquote
from tasks.kinds.base import TaskKind
from tasks.metrics import score_classif


def parse_label(raw: str) -> str:
    """One class name, quoted or not."""
    label = unquote(raw)
    if not label:
        raise RecordError("labels", "empty label; expected one class name")
    return label


def label_names(label: Label) -> list[str]:
    return [str(label)]


def target(labels: Sequence[str], label: Label) -> int:
    return list(labels).index(str(label))


KIND = TaskKind(
    name="classif", head="sequence", problem_type="single_label_classification", inputs=("text",),
    parse_label=parse_label, label_names=label_names, target=target,
    encode=sequence_features, decode=decode_classif, score=score_classif,
    metric_names=("accuracy", "f1_macro", "f1_weighted"), primary_metric="f1_macro", greater_is_better=True,
    min_labels=2,
)
