"""``ner``: one BIO label per whitespace-separated word, answered per word and scored per word (seqeval)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tasks.batching import token_labels
from tasks.decode import Prediction, label_scores, softmax
from tasks.errors import RecordError
from tasks.features import Feature, word_windows
from tasks.fields import Label, Record, label_list, split_words
from tasks.kinds.base import TaskKind
from tasks.metrics import Metrics, Predictions
from tasks.spec import TaskSpec


def parse_label(raw: str) -> list[str]:
    labels = raw.split()
    for label in labels:
        if label != "O" and not (label[:2] in ("B-", "I-") and len(label) > 2):
            raise RecordError("labels", f"{label!r} is not a BIO label (O, B-TYPE or I-TYPE)")
    return labels


def check_label(record: Record) -> None:
    n_words, n_labels = len(split_words(record.text)), len(label_list(record.label or []))
    if n_labels != n_words:
        raise RecordError("labels", f"{n_labels} labels for {n_words} words; expected one BIO label per word")


def fits_row(values: Mapping[str, str]) -> bool:
    """One BIO tag per word: a whole file of such rows is NER data, whatever task it was loaded for."""
    words, tags = split_words(values.get("text", "")), values.get("labels", "").split()
    return len(tags) == len(words) > 0 and all(t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2) for t in tags)


def order_labels(names: set[str]) -> tuple[str, ...]:
    """``O`` first, then by entity type with B- before I-."""
    rest = sorted(n for n in names if n != "O")
    rest.sort(key=lambda n: (n[2:], n[:2]))
    return ("O", *rest)


def target(labels: Sequence[str], label: Label) -> list[int]:
    index = {name: i for i, name in enumerate(labels)}
    return [index[name] for name in label_list(label)]


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


def decode(spec: TaskSpec, records: Sequence[Record], features: Sequence[Feature],
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
            pred["scores"] = [None if p is None else label_scores(spec, p) for p in rows]
        preds.append(pred)
    return preds


def score(labels: Sequence[str], gold: Sequence[Sequence[str]], preds: Predictions) -> Metrics:
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


KIND = TaskKind(
    name="ner", head="token", problem_type=None, inputs=("text",),
    parse_label=parse_label, label_names=label_list, target=target,
    encode=word_windows, decode=decode, score=score,
    metric_names=("precision", "recall", "f1", "word_accuracy"), primary_metric="f1", greater_is_better=True,
    implicit_labels=("O",), check_label=check_label, order_labels=order_labels, fits_row=fits_row,
    pipeline_tag="token-classification", plot="per_label_f1",
    example_answer='{"pred": ["B-PER", "I-PER", "O"], "proba": [0.98, 0.97, 0.99], "entities": [{"type": "PER", '
                   '"start_word": 0, "end_word": 1, "text": "Alice Martin", "score": 0.975}]}',
    label_batch=token_labels,
)
