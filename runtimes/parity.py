"""The parity comparison, and the check set an archive carries so a worker can run it on its own device.

Two gates compare one runtime's answers with another's through ``tasks.predict`` (so encoding and decoding are
identical): ``make archive`` checks ONNX against torch (``archive/parity.py``), and a worker given a GPU checks
torch fp16 on that GPU against the fp32 answers the archive recorded (``runtimes.device.gate_precision``). Both
call ``parity`` here, so "same labels, every probability within the tolerance" means the same thing in both.

The check set is ``parity_check.jsonl``: one line per record, its request fields and the fp32 torch prediction
(every label's score) made at archive time. It is capped at ``MAX_CHECK_RECORDS`` lines (the length probes first,
then test records), which keeps both the archive and the load-time check small: a few forward passes.

This module imports ``tasks`` only (no torch, no ``archive``): it ships inside every archive.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from tasks.errors import RecordError
from tasks.fields import Record
from tasks.kinds import TaskKind, TaskLike, as_resolved
from tasks.predict import Runner, predict
from tasks.records import make_record

#: micro-batches of a parity check: small, so that it sees several batch sizes and padded widths
CHECK_BATCH_SIZE = 4
#: written by ``make archive`` into archives that keep torch's weights; read by a worker given a GPU
CHECK_FILE = "parity_check.jsonl"
#: lines of the check set: enough to see every label and several widths, few enough to check in a second
MAX_CHECK_RECORDS = 64


def run_check(task: TaskLike, tokenizer: Any, runner: Runner, records: Sequence[Record]) -> list[dict[str, Any]]:
    """Predictions with every class's score, through the serving path, in small micro-batches."""
    return predict(task, tokenizer, runner, records, all_scores=True, max_batch_size=CHECK_BATCH_SIZE)


def _numbers(kind: TaskKind, pred: dict[str, Any]) -> list[float]:
    """Every probability of one prediction (the predicted value for a task without labels: regression)."""
    if not kind.has_labels:
        return [float(pred["pred"])]
    scores = pred.get("scores")
    rows = scores if isinstance(scores, list) else [scores]
    return [p for row in rows if row for p in row.values()]


def parity(task: TaskLike, expected: Sequence[dict[str, Any]], got: Sequence[dict[str, Any]],
           tolerance: float) -> dict[str, Any]:
    """Figures of ``got`` against ``expected``: label agreement and the largest difference."""
    kind = as_resolved(task).kind
    regression = not kind.has_labels  # a value, compared within tolerance, not a label
    same, worst = 0, 0.0
    for e, g in zip(expected, got):
        a, b = _numbers(kind, e), _numbers(kind, g)
        diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else math.inf
        worst = max(worst, diff)
        same += (diff <= tolerance) if regression else (e["pred"] == g["pred"])
    n = len(expected)
    return {"records": n, "label_agreement": same / n if n else 1.0, "max_abs_diff": worst, "tolerance": tolerance,
            "compared": "predicted values" if regression else "probabilities of every label",
            "passed": n == len(got) and same == n and worst <= tolerance}


# -- the check set an archive carries -----------------------------------------------------------------------------
def record_fields(record: Record) -> dict[str, Any]:
    """The request fields ``record`` was made from (``make_record`` makes it again from them)."""
    fields: dict[str, Any] = dict(record.inputs())
    if record.bbox is not None:
        fields["bbox"] = [list(box) for box in record.bbox]
    return fields


def write_check_set(path: Path, records: Sequence[Record], expected: Sequence[dict[str, Any]]) -> int:
    """Write the first ``MAX_CHECK_RECORDS`` records with their expected predictions; returns how many."""
    if len(records) != len(expected):
        raise ValueError(f"{len(records)} records but {len(expected)} expected predictions")
    rows = [{"record": record_fields(r), "expected": e} for r, e in zip(records, expected)][:MAX_CHECK_RECORDS]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


class CheckSetError(ValueError):
    """The archive's check set cannot be read; the message names the file and the line."""


def read_check_set(model_dir: Path, task: TaskLike) -> tuple[list[Record], list[dict[str, Any]]] | None:
    """The archive's check records and their fp32 predictions, or None where it carries none (older archives,
    ONNX-only archives, or no test data at archive time)."""
    path = model_dir / CHECK_FILE
    if not path.is_file():
        return None
    resolved = as_resolved(task)
    kind, spec = resolved.kind, resolved.spec
    records, expected = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            records.append(make_record(kind, spec.use_bbox, row["record"]))
            expected.append(dict(row["expected"]))
        except (ValueError, KeyError, TypeError, RecordError) as exc:
            raise CheckSetError(f"{path}:{number}: not a check record ({exc})") from None
    return (records, expected) if records else None
