"""The ``name=value;`` metric lines of the training log: the one writer, the one reader, and the names logged.

The contract with SageMaker (``MetricDefinitions``) and with ``launcher`` (which reads the same lines from
CloudWatch): every metric is logged on its own line as ``{split}_{name}={value};`` with split in
train/dev/test, name in ``[a-z0-9_]`` and the value formatted with ``%.6f`` (so possibly negative, ``nan`` or
``inf``), e.g. ``dev_f1=0.812300;``. A logging prefix before it and a `` step=N;`` after it are fine. The ``=``
and the ``;`` delimit the name and the value, so ``dev_f1`` never matches ``dev_f1_macro=...``.

This module imports only the task table (numpy), so the launcher can use it without torch or transformers.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from tasks.kinds import task_kind

SPLITS = ("train", "dev", "test")
#: the Trainer's losses: on the training batches, and on dev at every evaluation (test is scored, not run
#: through the loss, so there is no test_loss)
LOSSES = ("train_loss", "dev_loss")
VALUE_PATTERN = r"(-?(?:[0-9]+\.[0-9]+|nan|inf))"
_LINE = re.compile(r"\b(train|dev|test)_([a-z0-9_]+)=" + VALUE_PATTERN + ";")


def format_metric(name: str, value: float) -> str:
    """``name=value;`` with the value as ``%.6f``: the one way a metric is written."""
    return f"{name}={float(value):.6f};"


def metric_lines(split: str, metrics: Mapping[str, Any], step: int | None = None) -> list[str]:
    """One line per scalar of ``metrics`` (tables, None and booleans are skipped), named ``{split}_{key}``."""
    suffix = f" step={step};" if step is not None else ""
    return [format_metric(f"{split}_{key}", value) + suffix for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]


def parse_metric_lines(text: str) -> dict[str, float]:
    """The metrics ``text`` carries, by logged name (``nan`` and ``inf`` become floats; the last value wins)."""
    return {f"{m.group(1)}_{m.group(2)}": float(m.group(3)) for m in _LINE.finditer(text)}


def metric_regex(name: str) -> str:
    """The regex SageMaker applies to each log line for the logged ``name``; its one group captures the value."""
    return rf"\b{re.escape(name)}={VALUE_PATTERN};"


def logged_metric_names(task: str) -> list[str]:
    """Every name training logs for ``task``: the losses, then ``dev_`` / ``test_`` of each of its scores."""
    scores = task_kind(task).metric_names
    return [*LOSSES, *(f"{split}_{name}" for split in ("dev", "test") for name in scores)]
