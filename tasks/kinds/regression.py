"""``regression``: one number per text (a single output, MSE loss), scored by MSE, MAE and correlations."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tasks.batching import value_labels
from tasks.decode import Prediction, one_per_record
from tasks.errors import RecordError
from tasks.features import Feature, sequence_features
from tasks.fields import Label, Record
from tasks.kinds.base import TaskKind
from tasks.metrics import Metrics, Predictions
from tasks.spec import TaskSpec


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


def decode(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                      outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = one_per_record(features, outputs)
    return [{"pred": float(np.ravel(by_record[r])[0])} for r in range(len(records))]




def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def score(labels: Sequence[str], gold: Sequence[float], preds: Predictions) -> Metrics:
    from scipy.stats import pearsonr, spearmanr

    y_true = np.asarray(gold, dtype=np.float64)
    y_pred = np.asarray([p["pred"] for p in preds], dtype=np.float64)
    constant = len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    return {
        "mse": float(np.mean((y_true - y_pred) ** 2)),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        # correlation is undefined when either side is constant: report null rather than a warning and NaN
        "pearson": None if constant else _none_if_nan(pearsonr(y_true, y_pred)[0]),
        "spearman": None if constant else _none_if_nan(spearmanr(y_true, y_pred)[0]),
    }


KIND = TaskKind(
    name="regression", head="sequence", problem_type="regression", inputs=("text",),
    parse_label=parse_label, label_names=lambda label: [], target=target,
    encode=sequence_features, decode=decode, score=score,
    metric_names=("mse", "mae", "pearson", "spearman"), primary_metric="mse", greater_is_better=False,
    has_labels=False, plot="pred_vs_true", example_answer='{"pred": 4.21}',
    label_batch=value_labels,
)
