"""``multilabel-classif``: any number of labels per text (a sigmoid per label), with per-label thresholds tuned on
dev after training and saved in the spec, so serving decides exactly as evaluation did."""
from __future__ import annotations

import csv
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from tasks.batching import value_labels
from tasks.decode import Prediction, label_scores, one_per_record, sigmoid
from tasks.errors import RecordError
from tasks.features import Feature, sequence_features
from tasks.fields import Label, Record, label_list
from tasks.kinds.base import TaskKind
from tasks.metrics import Metrics, Predictions
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
    return replace(spec, thresholds=tune_thresholds(spec.labels, gold, probs))


def decode(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                      outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = one_per_record(features, outputs)
    preds = []
    for r in range(len(records)):
        probs = sigmoid(by_record[r])
        chosen = [i for i, label in enumerate(spec.labels) if probs[i] >= spec.threshold(label)]
        chosen.sort(key=lambda i: -probs[i])
        pred: Prediction = {"pred": [spec.labels[i] for i in chosen], "proba": [float(probs[i]) for i in chosen]}
        if all_scores:
            pred["scores"] = label_scores(spec, probs)
        preds.append(pred)
    return preds




def _multi_hot(labels: Sequence[str], sets: Sequence[Sequence[str]]) -> np.ndarray:
    index = {n: i for i, n in enumerate(labels)}
    hot = np.zeros((len(sets), len(labels)), dtype=np.int64)
    for row, names in enumerate(sets):
        for name in names:
            hot[row, index[name]] = 1
    return hot


def score(labels: Sequence[str], gold: Sequence[Sequence[str]], preds: Predictions) -> Metrics:
    from sklearn.metrics import f1_score

    y_true, y_pred = _multi_hot(labels, gold), _multi_hot(labels, [p["pred"] for p in preds])
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    return {
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subset_accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))) if len(gold) else 0.0,
        "per_label": {n: {"f1": float(per_label[i]), "support": int(y_true[:, i].sum())} for i, n in enumerate(labels)},
    }




def tune_thresholds(labels: Sequence[str], gold: Sequence[Sequence[str]], probs: np.ndarray) -> dict[str, float]:
    """Per-label threshold maximising that label's F1 on ``gold`` (dev); ties go to the one nearest 0.5."""
    y_true = _multi_hot(labels, gold)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    out = {}
    for i, name in enumerate(labels):
        best, best_f1 = 0.5, -1.0
        for t in sorted(grid, key=lambda t: abs(t - 0.5)):
            pred = probs[:, i] >= t
            tp = float(np.sum(pred & (y_true[:, i] == 1)))
            denom = float(pred.sum() + y_true[:, i].sum())
            f1 = 2 * tp / denom if denom else 1.0
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(t), f1
        out[name] = best
    return out


KIND = TaskKind(
    name="multilabel-classif", head="sequence", problem_type="multi_label_classification", inputs=("text",),
    parse_label=parse_label, label_names=label_list, target=target,
    encode=sequence_features, decode=decode, score=score,
    metric_names=("f1_micro", "f1_macro", "subset_accuracy"), primary_metric="f1_micro", greater_is_better=True,
    min_labels=1, tune=tune, plot="per_label_f1",
    example_answer='{"pred": ["price", "service"], "proba": [0.91, 0.66]}',
    label_batch=value_labels,
)
