"""The pure task layer: records -> model inputs -> predictions -> scores.

Training and serving both call this package, so what an endpoint answers is exactly what evaluation scored.
It performs no file, network or environment I/O and never imports TorchServe. It ships inside every model
archive as a package directory next to the handler (see ``archive/build.py``), so it must import with nothing
but numpy (metrics libraries are imported lazily, only by the scoring functions).
"""
from tasks.errors import RecordError, SpecError
from tasks.kinds import TASKS, TaskKind, task_kind
from tasks.predict import Runner, predict
from tasks.records import Record, make_record, parse_bbox, parse_label, split_words
from tasks.spec import SCHEMA_VERSION, TASK_SPEC_FILE, TaskSpec

__all__ = [
    "Record", "RecordError", "Runner", "SCHEMA_VERSION", "SpecError", "TASKS", "TASK_SPEC_FILE", "TaskKind",
    "TaskSpec", "make_record", "parse_bbox", "parse_label", "predict", "split_words", "task_kind",
]
