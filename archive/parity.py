"""The parity gate: ONNX serves only where it answers what torch answers, through the one prediction path.

``make archive`` serves a model with ONNX Runtime only when, through ``tasks.predict`` (so encoding and decoding
are identical), ONNX answers what torch answers on the checkpoint's test set: the same labels and every
probability within ``parity_tolerance`` (the predicted value itself for regression). Any other outcome -- an
export error, a run error (Longformer's sliding-window attention, traced at one length, breaks at another), a
difference -- keeps torch and says why in ``serving.json``.

The test set is the checkpoint's ``test_predictions.jsonl`` (texts only), or ``test.csv`` of ``--data DIR`` when
given; LayoutLM-style models need the boxes, so without ``--data`` they stay on torch. A few "length probes",
built from the test words at 1 word, half and twice the maximum length, make the check cover short inputs, full
windows and several batch widths, which a small test set may miss.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tasks.errors import RecordError
from tasks.kinds import task_kind
from tasks.predict import Runner, predict
from tasks.records import Record, make_record, split_words
from tasks.spec import TaskSpec

#: micro-batches of the parity check: small, so that it sees several batch sizes and padded widths
CHECK_BATCH_SIZE = 4


class NoCheckData(ValueError):
    """There is nothing to check the ONNX model against (the message is the reason torch is kept)."""


@dataclass(frozen=True)
class CheckSets:
    """The records the gates run on."""

    test: list[Record]
    dev: list[Record] = field(default_factory=list)


# -- the data the gates run on ------------------------------------------------------------------------------------
def check_sets(checkpoint: Path, spec: TaskSpec, data: Path | None) -> CheckSets:
    """Test (and dev) records from ``data`` (train/dev/test.csv), else the texts of ``test_predictions.jsonl``."""
    if data is not None:
        from training.data import load_dataset

        dataset = load_dataset(data, spec.task, spec.use_bbox)  # DataError: a broken --data is the caller's to fix
        if not dataset.test:
            raise NoCheckData(f"{data}/test.csv has no records to check ONNX against")
        return CheckSets(test=dataset.test, dev=dataset.dev)
    if spec.use_bbox:
        raise NoCheckData("this model reads word boxes, which test_predictions.jsonl does not keep; "
                          "pass --data DIR (its test.csv has the boxes) to check ONNX against torch")
    path = checkpoint / "test_predictions.jsonl"
    if not path.is_file():
        raise NoCheckData(f"{path.name} is missing from the checkpoint and no --data was given: "
                          "nothing to check ONNX against")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [record for row in rows if (record := _input_record(spec, row)) is not None]
    if not records:
        raise NoCheckData(f"{path.name} has no texts to check ONNX against")
    return CheckSets(test=records)


def _input_record(spec: TaskSpec, row: dict[str, Any]) -> Record | None:
    """The record a ``test_predictions.jsonl`` row was predicted from (its text fields), or None if not valid."""
    try:
        return make_record(spec.task, False, row)
    except RecordError:
        return None


def length_probes(spec: TaskSpec, records: Sequence[Record]) -> list[Record]:
    """Records of 1 word, half and twice ``max_seq_length`` words, cycled from ``records`` (boxes included);
    every text field of the task (a pair's two texts) gets the same words."""
    words, boxes = [], []
    for record in records:
        words.extend(split_words(record.text))
        boxes.extend(record.bbox or [])
    probes = []
    for n in (1, spec.max_seq_length // 2, 2 * spec.max_seq_length):
        text = " ".join(words[i % len(words)] for i in range(n))
        fields: dict[str, Any] = {name: text for name in task_kind(spec.task).inputs}
        fields["bbox"] = [boxes[i % len(boxes)] for i in range(n)] if spec.use_bbox else None
        probes.append(make_record(spec.task, spec.use_bbox, fields))
    return probes


# -- the gate -----------------------------------------------------------------------------------------------------
def run_check(spec: TaskSpec, tokenizer: Any, runner: Runner, records: Sequence[Record]) -> list[dict]:
    """Predictions with every class's score, through the serving path, in small micro-batches."""
    return predict(spec, tokenizer, runner, records, all_scores=True, max_batch_size=CHECK_BATCH_SIZE)


def _numbers(task: str, pred: dict) -> list[float]:
    """Every probability of one prediction (the predicted value for a task without labels: regression)."""
    if not task_kind(task).has_labels:
        return [float(pred["pred"])]
    scores = pred.get("scores")
    rows = scores if isinstance(scores, list) else [scores]
    return [p for row in rows if row for p in row.values()]


def parity(spec: TaskSpec, expected: Sequence[dict], got: Sequence[dict], tolerance: float) -> dict[str, Any]:
    """Figures of ``got`` (ONNX) against ``expected`` (torch): label agreement and the largest difference."""
    regression = not task_kind(spec.task).has_labels  # a value, compared within tolerance, not a label
    same, worst = 0, 0.0
    for e, g in zip(expected, got):
        a, b = _numbers(spec.task, e), _numbers(spec.task, g)
        diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else math.inf
        worst = max(worst, diff)
        same += (diff <= tolerance) if regression else (e["pred"] == g["pred"])
    n = len(expected)
    return {"records": n, "label_agreement": same / n if n else 1.0, "max_abs_diff": worst, "tolerance": tolerance,
            "compared": "predicted values" if regression else "probabilities of every label",
            "passed": n == len(got) and same == n and worst <= tolerance}
