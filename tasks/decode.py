"""Model outputs -> predictions: the building blocks every task's decoder shares, and classif's decoder (which
pair-classif reuses). Each task's own decoder lives with its row in ``tasks/kinds/``; what a decoder returns is the
answer the endpoint gives and the one its scorer scores."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tasks.features import Feature
from tasks.fields import Record
from tasks.spec import TaskSpec

Prediction = dict[str, Any]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


def sigmoid(logits: np.ndarray) -> np.ndarray:
    probs: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return probs


def label_scores(spec: TaskSpec, probs: np.ndarray) -> dict[str, float]:
    """Every label's probability, by name."""
    return {label: float(p) for label, p in zip(spec.labels, probs)}


def one_per_record(features: Sequence[Feature], outputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    """Sequence heads: each record's one output, by record index."""
    return {f.record: np.asarray(o, dtype=np.float64) for f, o in zip(features, outputs)}


def decode_classif(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                   outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = one_per_record(features, outputs)
    preds = []
    for r in range(len(records)):
        probs = softmax(by_record[r])
        best = int(np.argmax(probs))
        pred: Prediction = {"pred": spec.labels[best], "proba": float(probs[best])}
        if all_scores:
            pred["scores"] = label_scores(spec, probs)
        preds.append(pred)
    return preds
