"""``ner``: one BIO label per whitespace-separated word, answered per word and scored per word (seqeval)."""
from __future__ import annotations

from typing import Mapping, Sequence

from tasks import decode, metrics
from tasks.errors import RecordError
from tasks.features import word_windows
from tasks.fields import Label, Record, label_list, split_words
from tasks.kinds.base import TaskKind


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


KIND = TaskKind(
    name="ner", head="token", problem_type=None, inputs=("text",),
    parse_label=parse_label, label_names=label_list, target=target,
    encode=word_windows, decode=decode.decode_ner, score=metrics.score_ner,
    metric_names=("precision", "recall", "f1", "word_accuracy"), primary_metric="f1", greater_is_better=True,
    implicit_labels=("O",), check_label=check_label, order_labels=order_labels, fits_row=fits_row,
    pipeline_tag="token-classification", plot="per_label_f1",
    example_answer='{"pred": ["B-PER", "I-PER", "O"], "proba": [0.98, 0.97, 0.99], "entities": [{"type": "PER", '
                   '"start_word": 0, "end_word": 1, "text": "Alice Martin", "score": 0.975}]}',
)
