"""Records -> model features: tokenisation, NER windows, label alignment, LayoutLM boxes.

A feature is one forward-pass row. Sequence tasks make one feature per record (truncated to
``max_seq_length``); NER makes one or more overlapping windows per record so that no word is ever dropped.
Windows are cut here, over the record's own token sequence, so every token's position in the record is known
and each word can later be decoded from the window that gives it the most context.

These are the builders the task table's rows choose from (``TaskKind.encode``); ``tasks.encode.encode`` is the
entry point that asks the row. A builder gets ``target`` (gold label -> training target) only when labels are
wanted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from tasks.families import CLS_BOX, SEP_BOX
from tasks.fields import Box, Label, Record, split_words
from tasks.spec import TaskSpec

IGNORE_INDEX = -100  # label value that the loss skips (continuation sub-tokens, special tokens)
#: a task's gold label -> what the loss reads (a class id, a multi-hot list, a float, per-word class ids)
Target = Callable[[Label], Any]


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
    #: segment ids (0 first text, 1 second) of a sentence pair; None means all zeros
    token_type_ids: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def target_of(record: Record, target: Target | None) -> Any:
    """The training target of ``record``: None when serving (no ``target``) or when the record has no label."""
    return target(record.label) if target is not None and record.label is not None else None


def _tokenize_words(tokenizer: Any, word_lists: list[list[str]]) -> list[tuple[list[int], list[int]]]:
    """Sub-token ids and their word index, for each record, without special tokens."""
    if not word_lists:
        return []
    enc = tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False, truncation=False)
    out = []
    for i, ids in enumerate(enc["input_ids"]):
        out.append((list(ids), [w if w is not None else -1 for w in enc.word_ids(i)]))
    return out


def label_positions(ids: list[int], word_of: list[int], word_start_ids: tuple[int, ...]) -> list[bool]:
    """For each token, whether it carries its word's label: the word's first token, unless that token is only a
    word-start marker (SentencePiece's lone "▁", ``TaskSpec.word_start_ids``) and the word has another token --
    the marker is the same token for every such word, so the piece after it is the one that says which word it
    is. A word that is all markers keeps its first."""
    chosen: dict[int, int] = {}
    for i, (token, word) in enumerate(zip(ids, word_of)):
        if word not in chosen or (ids[chosen[word]] in word_start_ids and token not in word_start_ids):
            chosen[word] = i
    positions = [False] * len(ids)
    for i in chosen.values():
        positions[i] = True
    return positions


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


def _word_features(spec: TaskSpec, tokenizer: Any, records: list[Record], target: Target | None,
                   per_word: bool) -> list[Feature]:
    """Features over pre-split words. ``per_word`` (NER): overlapping windows, one label per word's first
    sub-token and what decoding needs to map tokens back to words; otherwise one truncated window with the
    record's one target (a sequence task reading word boxes)."""
    size = spec.max_seq_length - 2  # room for the two special tokens
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    words_per_record = [split_words(r.text) for r in records]
    features: list[Feature] = []
    for r, (record, (ids, word_of)) in enumerate(zip(records, _tokenize_words(tokenizer, words_per_record))):
        is_first = label_positions(ids, word_of, spec.word_start_ids)
        spans = _windows(len(ids), size, spec.stride) if per_word else [(0, min(len(ids), size))]
        goal = target_of(record, target)
        for start, end in spans:
            first = [None] + [word_of[i] if is_first[i] else None for i in range(start, end)] + [None]
            n = end - start
            feature = Feature(record=r, input_ids=[cls_id, *ids[start:end], sep_id])
            if per_word:
                feature.first_of_word = first
                feature.context = [0] + [min(k, n - 1 - k) for k in range(n)] + [0]
            if spec.use_bbox:
                boxes = record.bbox or []
                feature.bbox = [CLS_BOX, *(boxes[word_of[i]] for i in range(start, end)), SEP_BOX]
            if goal is not None:
                feature.labels = [IGNORE_INDEX if w is None else goal[w] for w in first] if per_word else goal
            features.append(feature)
    return features


def word_windows(spec: TaskSpec, tokenizer: Any, records: list[Record], target: Target | None) -> list[Feature]:
    """Token-head tasks (NER): overlapping windows over each record's words, labels on first sub-tokens."""
    return _word_features(spec, tokenizer, records, target, per_word=True)


def sequence_features(spec: TaskSpec, tokenizer: Any, records: list[Record], target: Target | None
                      ) -> list[Feature]:
    """Sequence-head tasks: one truncated feature per record, tokenised from the raw text the way the tokenizer
    expects (or over the words, when the model reads word boxes)."""
    if spec.use_bbox:
        return _word_features(spec, tokenizer, records, target, per_word=False)
    enc = tokenizer([r.text for r in records], truncation=True, max_length=spec.max_seq_length)
    return [Feature(record=r, input_ids=list(ids),
                    labels=target_of(records[r], target))
            for r, ids in enumerate(enc["input_ids"])]
