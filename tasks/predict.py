"""The one prediction path: encode -> micro-batch -> run -> decode. Training evaluation and serving call it."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tasks.batching import pad, plan_batches
from tasks.encode import encode
from tasks.features import Feature
from tasks.fields import Record
from tasks.kinds import TaskLike, as_resolved

#: a runtime: padded int64 inputs by name -> logits (batch, [tokens,] outputs). torch and ONNX Runtime both fit.
Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def run_features(task: TaskLike, runner: Runner, features: Sequence[Feature], pad_token_id: int,
                 max_batch_size: int = 32, max_tokens: int = 16384) -> list[np.ndarray]:
    """The runner's output for each feature (unpadded for token heads), in feature order."""
    resolved = as_resolved(task)
    token_head, spec = resolved.kind.head == "token", resolved.spec
    outputs: list[np.ndarray | None] = [None] * len(features)
    for group in plan_batches([len(f) for f in features], max_batch_size, max_tokens):
        logits = np.asarray(runner(pad([features[i] for i in group], spec.inputs, pad_token_id)))
        for row, i in enumerate(group):
            outputs[i] = logits[row, : len(features[i])] if token_head else logits[row]
    return outputs  # type: ignore[return-value]  # no None left: plan_batches puts every index in one batch


def predict(task: TaskLike, tokenizer: Any, runner: Runner, records: Sequence[Record], all_scores: bool = False,
            max_batch_size: int = 32, max_tokens: int = 16384) -> list[dict[str, Any]]:
    """One prediction per record, in order (``task``: the resolved spec, or a bare one resolved here)."""
    if not records:
        return []
    resolved = as_resolved(task)
    features = encode(resolved, tokenizer, list(records))
    outputs = run_features(resolved, runner, features, tokenizer.pad_token_id, max_batch_size, max_tokens)
    return resolved.kind.decode(resolved.spec, records, features, outputs, all_scores)
