"""Records -> model features: tokenisation, NER windows, label alignment, LayoutLM boxes.

A feature is one forward-pass row. Sequence tasks make one feature per record (truncated to
``max_seq_length``); NER makes one or more overlapping windows per record so that no word is ever dropped.
Windows are cut here, over the record's own token sequence, so every token's position in the record is known
and each word can later be decoded from the window that gives it the most context.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.families import CLS_BOX, SEP_BOX, family_for
from tasks.records import Box, Record, split_words
from tasks.spec import TaskSpec

IGNORE_INDEX = -100  # label value that the loss skips (continuation sub-tokens, special tokens)


@dataclass
class Feature:
    """One model input row plus what decoding needs to map its outputs back to the record."""

    record: int
    input_ids: list[int]
    bbox: list[Box] | None = None
    #: NER only: for each token, the index of its word in the record if it is that word's first sub-token
    first_of_word: list[int | None] = field(default_factory=list)
    #: NER only: for each token, how much context it has on its weaker side inside this window
    context: list[int] = field(default_factory=list)
    #: training only: a class id, a multi-hot list, a float, or per-token class ids
    labels: Any = None

    def __len__(self) -> int:
        return len(self.input_ids)


def _tokenize_words(tokenizer: Any, word_lists: list[list[str]]) -> list[tuple[list[int], list[int]]]:
    """Sub-token ids and their word index, for each record, without special tokens."""
    if not word_lists:
        return []
    enc = tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False, truncation=False)
    out = []
    for i, ids in enumerate(enc["input_ids"]):
        out.append((list(ids), [w if w is not None else -1 for w in enc.word_ids(i)]))
    return out


def _windows(n_tokens: int, size: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) token spans of length <= size, overlapping by ``stride`` tokens, covering every token."""
    if n_tokens <= size:
        return [(0, n_tokens)]
    step = size - stride
    spans, start = [], 0
    while True:
        end = min(start + size, n_tokens)
        spans.append((start, end))
        if end == n_tokens:
            return spans
        start += step


def _label_ids(spec: TaskSpec, label: Any) -> Any:
    index = {name: i for i, name in enumerate(spec.labels)}
    if spec.task == "classif":
        return index[label]
    if spec.task == "multilabel-classif":
        hot = [0.0] * len(spec.labels)
        for name in label:
            hot[index[name]] = 1.0
        return hot
    if spec.task == "regression":
        return float(label)
    return [index[name] for name in label]


def _word_features(spec: TaskSpec, tokenizer: Any, records: list[Record], with_labels: bool) -> list[Feature]:
    """Windowed features over pre-split words: NER, and any task that carries word boxes."""
    size = spec.max_seq_length - 2  # room for the two special tokens
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    words_per_record = [split_words(r.text) for r in records]
    features: list[Feature] = []
    for r, (record, (ids, word_of)) in enumerate(zip(records, _tokenize_words(tokenizer, words_per_record))):
        is_first = [i == 0 or word_of[i] != word_of[i - 1] for i in range(len(ids))]
        spans = _windows(len(ids), size, spec.stride) if spec.task == "ner" else [(0, min(len(ids), size))]
        word_labels = _label_ids(spec, record.label) if with_labels else None
        for start, end in spans:
            first = [None] + [word_of[i] if is_first[i] else None for i in range(start, end)] + [None]
            n = end - start
            context = [0] + [min(k, n - 1 - k) for k in range(n)] + [0]
            feature = Feature(record=r, input_ids=[cls_id, *ids[start:end], sep_id], first_of_word=first,
                              context=context)
            if spec.use_bbox:
                boxes = record.bbox or []
                feature.bbox = [CLS_BOX, *(boxes[word_of[i]] for i in range(start, end)), SEP_BOX]
            if with_labels:
                if spec.task == "ner":
                    feature.labels = [IGNORE_INDEX if w is None else word_labels[w] for w in first]
                else:
                    feature.labels = word_labels
            if spec.task != "ner":
                feature.first_of_word, feature.context = [], []
            features.append(feature)
    return features


def _text_features(spec: TaskSpec, tokenizer: Any, records: list[Record], with_labels: bool) -> list[Feature]:
    """One truncated feature per record, tokenised from the raw text the way the tokenizer expects."""
    enc = tokenizer([r.text for r in records], truncation=True, max_length=spec.max_seq_length)
    return [
        Feature(record=r, input_ids=list(ids), labels=_label_ids(spec, records[r].label) if with_labels else None)
        for r, ids in enumerate(enc["input_ids"])
    ]


def encode(spec: TaskSpec, tokenizer: Any, records: list[Record], with_labels: bool = False) -> list[Feature]:
    """Model features for ``records``, in record order (a record's windows are consecutive)."""
    family_for(spec.model_type)  # fail early on an unsupported architecture
    if spec.task == "ner" or spec.use_bbox:
        return _word_features(spec, tokenizer, records, with_labels)
    return _text_features(spec, tokenizer, records, with_labels)
