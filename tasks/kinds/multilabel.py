"""``multilabel-classif``: any number of labels per text (a sigmoid per label), with per-label thresholds tuned on
dev after training and saved in the spec, so serving decides exactly as evaluation did."""
from __future__ import annotations

import csv
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tasks import decode, metrics
from tasks.errors import RecordError
from tasks.features import sequence_features
from tasks.fields import Label, label_list
from tasks.kinds.base import TaskKind

if TYPE_CHECKING:
    from tasks.spec import TaskSpec


def parse_label(raw: str) -> list[str]:
    """Comma-separated quoted labels (``"a","b"``), possibly none."""
    if not raw.strip():
        return []
    row = next(csv.reader([raw], skipinitialspace=True))
    labels = [item.strip() for item in row]
    if any(not item for item in labels):
        raise RecordError("labels", f"empty label in {raw!r}; expected comma-separated quoted labels like \"a\",\"b\"")
    if len(set(labels)) != len(labels):
        raise RecordError("labels", f"a label is repeated in {raw!r}")
    return labels


def target(labels: Sequence[str], label: Label) -> list[float]:
    index = {name: i for i, name in enumerate(labels)}
    hot = [0.0] * len(labels)
    for name in label_list(label):
        hot[index[name]] = 1.0
    return hot


def tune(spec: TaskSpec, gold: Sequence[Any], preds: Sequence[dict[str, Any]]) -> TaskSpec:
    """The spec with per-label thresholds that maximise each label's dev F1."""
    probs = np.asarray([[p["scores"][label] for label in spec.labels] for p in preds])
    return replace(spec, thresholds=metrics.tune_thresholds(spec.labels, gold, probs))


KIND = TaskKind(
    name="multilabel-classif", head="sequence", problem_type="multi_label_classification", inputs=("text",),
    parse_label=parse_label, label_names=label_list, target=target,
    encode=sequence_features, decode=decode.decode_multilabel, score=metrics.score_multilabel,
    metric_names=("f1_micro", "f1_macro", "subset_accuracy"), primary_metric="f1_micro", greater_is_better=True,
    min_labels=1, tune=tune, plot="per_label_f1",
    example_answer='{"pred": ["price", "service"], "proba": [0.91, 0.66]}',
)
