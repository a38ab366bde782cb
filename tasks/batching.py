"""Micro-batching and padding, shared by the training collator and every serving runtime.

Inference sorts features by length and pads per micro-batch under a bound on tokens per forward pass: padding
a short text to a long neighbour's length multiplies its cost, and one unbounded batch of long texts can
exhaust memory.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tasks.families import PAD_BOX
from tasks.features import IGNORE_INDEX, Feature


def plan_batches(lengths: Sequence[int], max_batch_size: int, max_tokens: int) -> list[list[int]]:
    """Groups of feature indices, longest first, each with ``size * longest <= max_tokens`` (at least one)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= max_batch_size or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad(features: Sequence[Feature], inputs: Sequence[str], pad_token_id: int,
        labels: Callable[[Sequence[Feature], int], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The model ``inputs`` (``TaskSpec.inputs``) of ``features`` as int64 arrays padded to the longest; the
    training targets too, stacked by ``labels`` (the task row's ``label_batch``), when given."""
    n, width = len(features), max(len(f) for f in features)
    input_ids = np.full((n, width), pad_token_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    for i, f in enumerate(features):
        input_ids[i, : len(f)] = f.input_ids
        mask[i, : len(f)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if "token_type_ids" in inputs:
        types = np.zeros((n, width), dtype=np.int64)  # one segment unless a feature says otherwise (pairs)
        for i, f in enumerate(features):
            if f.token_type_ids is not None:
                types[i, : len(f)] = f.token_type_ids
        batch["token_type_ids"] = types
    if "bbox" in inputs:
        boxes = np.tile(np.asarray(PAD_BOX, dtype=np.int64), (n, width, 1))
        for i, f in enumerate(features):
            if f.bbox is not None:
                boxes[i, : len(f)] = f.bbox
        batch["bbox"] = boxes
    if "global_attention_mask" in inputs:
        glob = np.zeros((n, width), dtype=np.int64)
        glob[:, 0] = 1
        batch["global_attention_mask"] = glob
    if labels is not None:
        batch["labels"] = labels(features, width)
    return batch


def token_labels(features: Sequence[Feature], width: int) -> np.ndarray:
    """Per-token class ids (NER), padded with the index the loss skips."""
    labels = np.full((len(features), width), IGNORE_INDEX, dtype=np.int64)
    for i, f in enumerate(features):
        labels[i, : len(f.labels)] = f.labels
    return labels


def class_labels(features: Sequence[Feature], width: int) -> np.ndarray:
    """One class id per feature."""
    return np.asarray([f.labels for f in features], dtype=np.int64)


def value_labels(features: Sequence[Feature], width: int) -> np.ndarray:
    """Float targets per feature: a multi-hot row, or a regression value."""
    return np.asarray([f.labels for f in features], dtype=np.float32)
