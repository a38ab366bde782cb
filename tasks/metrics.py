"""Scoring's shared pieces, and classif's scorer (which pair-classif reuses). Each task's own scorer lives with its
row in ``tasks/kinds/`` and scores decoded predictions, the same ones the endpoint returns (NER per word).

scikit-learn, scipy and seqeval are imported inside the functions: serving imports this package too and never
scores anything, so it should not pay for those imports.
"""
from __future__ import annotations

from typing import Any, Sequence

Metrics = dict[str, Any]
#: the answers the decode step gives, one per record
Predictions = Sequence[dict[str, Any]]


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
