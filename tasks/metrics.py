"""Scores computed from decoded predictions, the same ones the endpoint returns. NER is scored per word.

scikit-learn, scipy and seqeval are imported inside the functions: serving imports this package too and never
scores anything, so it should not pay for those imports.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

Metrics = dict[str, Any]
#: the answers the decode step gives, one per record
Predictions = Sequence[dict[str, Any]]


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def score_classif(labels: Sequence[str], gold: Sequence[str], preds: Predictions) -> Metrics:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y_pred = [p["pred"] for p in preds]
    names = list(labels)
    p, r, f, s = precision_recall_fscore_support(gold, y_pred, labels=names, zero_division=0)
    return {
        "accuracy": float(accuracy_score(gold, y_pred)),
        "f1_macro": float(f1_score(gold, y_pred, labels=names, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(gold, y_pred, labels=names, average="weighted", zero_division=0)),
        "per_class": {
            n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)
        },
        "confusion_matrix": {"labels": names, "matrix": confusion_matrix(gold, y_pred, labels=names).tolist()},
    }


def _multi_hot(labels: Sequence[str], sets: Sequence[Sequence[str]]) -> np.ndarray:
    index = {n: i for i, n in enumerate(labels)}
    hot = np.zeros((len(sets), len(labels)), dtype=np.int64)
    for row, names in enumerate(sets):
        for name in names:
            hot[row, index[name]] = 1
    return hot


def score_multilabel(labels: Sequence[str], gold: Sequence[Sequence[str]], preds: Predictions) -> Metrics:
    from sklearn.metrics import f1_score

    y_true, y_pred = _multi_hot(labels, gold), _multi_hot(labels, [p["pred"] for p in preds])
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    return {
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subset_accuracy": float(np.mean(np.all(y_true == y_pred, axis=1))) if len(gold) else 0.0,
        "per_label": {n: {"f1": float(per_label[i]), "support": int(y_true[:, i].sum())} for i, n in enumerate(labels)},
    }


def score_regression(labels: Sequence[str], gold: Sequence[float], preds: Predictions) -> Metrics:
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


def score_ner(labels: Sequence[str], gold: Sequence[Sequence[str]], preds: Predictions) -> Metrics:
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    y_true, y_pred = [list(g) for g in gold], [list(p["pred"]) for p in preds]
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_type = {
        name: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
               "support": int(v["support"])}
        for name, v in report.items() if not name.endswith(" avg")
    }
    return {
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "word_accuracy": float(accuracy_score(y_true, y_pred)),
        "per_type": per_type,
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
