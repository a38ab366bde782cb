"""``regression``: one number per text (a single output, MSE loss), scored by MSE, MAE and correlations."""
from __future__ import annotations

import math
from typing import Sequence

from tasks import decode, metrics
from tasks.errors import RecordError
from tasks.features import sequence_features
from tasks.fields import Label
from tasks.kinds.base import TaskKind


def parse_label(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise RecordError("labels", f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError("labels", f"{raw!r} is not a finite number")
    return value


def target(labels: Sequence[str], label: Label) -> float:
    if isinstance(label, list):  # parse_label only makes numbers
        raise TypeError(f"expected a number, got {label!r}")
    return float(label)


KIND = TaskKind(
    name="regression", head="sequence", problem_type="regression", inputs=("text",),
    parse_label=parse_label, label_names=lambda label: [], target=target,
    encode=sequence_features, decode=decode.decode_regression, score=metrics.score_regression,
    metric_names=("mse", "mae", "pearson", "spearman"), primary_metric="mse", greater_is_better=False,
    has_labels=False, plot="pred_vs_true", example_answer='{"pred": 4.21}',
)
