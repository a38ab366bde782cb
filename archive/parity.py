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

The comparison itself (``parity``, ``run_check``) lives in ``runtimes.parity``, which ships in the archive: a
worker given a GPU runs the same comparison on the check set ``make archive`` writes (fp16 against fp32).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from runtimes.device import FP16_TOLERANCE
from runtimes.parity import CHECK_BATCH_SIZE, CHECK_FILE, parity, run_check, write_check_set
from tasks.errors import RecordError
from tasks.fields import Record, split_words
from tasks.kinds import Resolved, TaskLike, as_resolved
from tasks.records import make_record
from tasks.serving_manifest import GpuEntry

__all__ = ["CHECK_BATCH_SIZE", "CheckSets", "NoCheckData", "check_sets", "gpu_entry", "length_probes", "parity",
           "run_check"]


class NoCheckData(ValueError):
    """There is nothing to check the ONNX model against (the message is the reason torch is kept)."""


@dataclass(frozen=True)
class CheckSets:
    """The records the gates run on."""

    test: list[Record]
    dev: list[Record] = field(default_factory=list)


# -- the data the gates run on ------------------------------------------------------------------------------------
def check_sets(checkpoint: Path, task: TaskLike, data: Path | None) -> CheckSets:
    """Test (and dev) records from ``data`` (train/dev/test.csv), else the texts of ``test_predictions.jsonl``."""
    resolved = as_resolved(task)
    spec = resolved.spec
    if data is not None:
        from training.data import load_dataset

        dataset = load_dataset(data, resolved.kind, spec.use_bbox)  # DataError: a broken --data is the caller's to fix
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
    records = [record for row in rows if (record := _input_record(resolved, row)) is not None]
    if not records:
        raise NoCheckData(f"{path.name} has no texts to check ONNX against")
    return CheckSets(test=records)


def _input_record(task: Resolved, row: dict[str, Any]) -> Record | None:
    """The record a ``test_predictions.jsonl`` row was predicted from (its text fields), or None if not valid."""
    try:
        return make_record(task.kind, False, row)
    except RecordError:
        return None


def length_probes(task: TaskLike, records: Sequence[Record]) -> list[Record]:
    """Records of 1 word, half and twice ``max_seq_length`` words, cycled from ``records`` (boxes included);
    every text field of the task (a pair's two texts) gets the same words."""
    resolved = as_resolved(task)
    kind, spec = resolved.kind, resolved.spec
    words, boxes = [], []
    for record in records:
        words.extend(split_words(record.text))
        boxes.extend(record.bbox or [])
    probes = []
    for n in (1, spec.max_seq_length // 2, 2 * spec.max_seq_length):
        text = " ".join(words[i % len(words)] for i in range(n))
        fields: dict[str, Any] = {name: text for name in kind.inputs}
        fields["bbox"] = [boxes[i % len(boxes)] for i in range(n)] if spec.use_bbox else None
        probes.append(make_record(kind, spec.use_bbox, fields))
    return probes


# -- the check set a GPU worker runs at load ----------------------------------------------------------------------
def gpu_entry(payload: Path, weights: bool, reference: tuple[list[Record], list[dict[str, Any]]] | None,
              missing: str = "") -> GpuEntry:
    """serving.json's ``gpu`` entry, writing the check set (``reference``: records and torch's fp32 answers on the
    CPU, length probes first so the cap keeps them) into ``payload`` where the archive keeps torch's weights.

    ``missing``: why there is no reference (no test data), where ``reference`` is None."""
    if not weights:
        return GpuEntry(runtime=None, reason="the weights were dropped (ONNX serves): on a GPU host this archive "
                        "serves ONNX on the CPU; make archive --keep-weights keeps the way to the GPU")
    note = ("on a GPU torch serves (ONNX Runtime's CUDA provider is not used): fp16 where it passes the parity "
            f"gate against {CHECK_FILE} on the serving GPU at load, fp32 otherwise")
    if reference is None:
        return GpuEntry(runtime="torch", fp16_tolerance=FP16_TOLERANCE, note=note,
                        reason=f"no check set ({missing}): fp16 is never checked, so fp32 serves on a GPU")
    records, expected = reference
    written = write_check_set(payload / CHECK_FILE, records, expected)
    return GpuEntry(runtime="torch", fp16_tolerance=FP16_TOLERANCE, note=note, check_file=CHECK_FILE,
                    check_records=written,
                    reason=f"{written} records with torch's fp32 answers (CPU, archive time) for the load-time gate")
