"""Model outputs -> predictions. This is the answer the endpoint returns and the one metrics score.

The task table (``tasks/kinds/``) picks each task's decoder from here."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from tasks.features import Feature
from tasks.fields import Record, split_words

if TYPE_CHECKING:
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


def _scores(spec: TaskSpec, probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(spec.labels, probs)}


def _one_per_record(features: Sequence[Feature], outputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    return {f.record: np.asarray(o, dtype=np.float64) for f, o in zip(features, outputs)}


def decode_classif(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                   outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = _one_per_record(features, outputs)
    preds = []
    for r in range(len(records)):
        probs = softmax(by_record[r])
        best = int(np.argmax(probs))
        pred: Prediction = {"pred": spec.labels[best], "proba": float(probs[best])}
        if all_scores:
            pred["scores"] = _scores(spec, probs)
        preds.append(pred)
    return preds


def decode_multilabel(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                      outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = _one_per_record(features, outputs)
    preds = []
    for r in range(len(records)):
        probs = sigmoid(by_record[r])
        chosen = [i for i, label in enumerate(spec.labels) if probs[i] >= spec.threshold(label)]
        chosen.sort(key=lambda i: -probs[i])
        pred: Prediction = {"pred": [spec.labels[i] for i in chosen], "proba": [float(probs[i]) for i in chosen]}
        if all_scores:
            pred["scores"] = _scores(spec, probs)
        preds.append(pred)
    return preds


def decode_regression(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
                      outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    by_record = _one_per_record(features, outputs)
    return [{"pred": float(np.ravel(by_record[r])[0])} for r in range(len(records))]


def entities(words: Sequence[str], labels: Sequence[str], probas: Sequence[float]) -> list[dict[str, Any]]:
    """BIO spans; an I- that does not continue a span of its type starts one (as conlleval does)."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for i, label in enumerate(labels):
        prefix, _, kind = label.partition("-")
        if current is not None and prefix == "I" and kind == current["type"]:
            current["end_word"] = i
            current["_p"].append(probas[i])
            continue
        if current is not None:
            spans.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"type": kind, "start_word": i, "end_word": i, "_p": [probas[i]]}
    if current is not None:
        spans.append(current)
    for span in spans:
        p = span.pop("_p")
        span["text"] = " ".join(words[span["start_word"]: span["end_word"] + 1])
        span["score"] = float(np.mean(p))
    return spans


def decode_ner(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
               outputs: Sequence[np.ndarray], all_scores: bool = False) -> list[Prediction]:
    """One label per word: each word is read from the window where its first sub-token has most context."""
    best: list[dict[int, tuple[int, np.ndarray]]] = [{} for _ in records]
    for f, out in zip(features, outputs):
        seen = best[f.record]
        for pos, word in enumerate(f.first_of_word):
            if word is not None and (word not in seen or f.context[pos] > seen[word][0]):
                seen[word] = (f.context[pos], np.asarray(out[pos], dtype=np.float64))
    fallback = spec.labels.index("O") if "O" in spec.labels else 0
    preds = []
    for r, record in enumerate(records):
        words = split_words(record.text)
        labels: list[str] = []
        probas: list[float] = []
        rows: list[np.ndarray | None] = []
        for w in range(len(words)):
            if w in best[r]:
                probs = softmax(best[r][w][1])
                k = int(np.argmax(probs))
                labels.append(spec.labels[k])
                probas.append(float(probs[k]))
                rows.append(probs)
            else:  # the tokenizer produced no sub-token for this word (e.g. a lone control character)
                labels.append(spec.labels[fallback])
                probas.append(0.0)
                rows.append(None)
        pred: Prediction = {"pred": labels, "proba": probas, "entities": entities(words, labels, probas)}
        if all_scores:
            pred["scores"] = [None if p is None else _scores(spec, p) for p in rows]
        preds.append(pred)
    return preds
