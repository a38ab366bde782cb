"""SageMaker metric definitions for our training log, and a parser for the same lines.

The contract with training: every metric is logged on its own line as ``{split}_{name}={value};`` with split
in train/dev/test, name in ``[a-z0-9_]`` and the value formatted with ``%.6f`` (so possibly negative, ``nan``
or ``inf``), e.g. ``dev_f1=0.812300;``. A logging prefix before it is fine. The ``=`` and the ``;`` delimit the
name and the value, so ``dev_f1`` never matches ``dev_f1_macro=...``.
"""
from __future__ import annotations

import re

from launcher.errors import require

SPLITS = ("train", "dev", "test")
EVAL_SPLITS = ("dev", "test")
#: scores each task's evaluation logs for dev and test (the names tasks.metrics returns)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "ner": ("f1", "precision", "recall"),
    "classif": ("accuracy", "f1_macro", "f1_weighted"),
    "multilabel-classif": ("f1_micro", "f1_macro", "subset_accuracy"),
    "regression": ("mse", "mae", "pearson", "spearman"),
}
#: logged by every task: training loss, and the loss on the evaluation splits
LOSS = "loss"

_VALUE = r"(-?(?:[0-9]+\.[0-9]+|nan|inf))"
_LINE = re.compile(r"\b(train|dev|test)_([a-z0-9_]+)=" + _VALUE + ";")


def metric_regex(split: str, name: str) -> str:
    """The regex SageMaker applies to each log line; its one group captures the value."""
    require(split in SPLITS, "split", split, f"one of {SPLITS}")
    require(re.fullmatch(r"[a-z0-9_]+", name) is not None, "metric name", name, "[a-z0-9_]+")
    return rf"\b{split}_{name}={_VALUE};"


def metric_names(task: str) -> list[str]:
    """``train_loss``, then ``dev_`` / ``test_`` variants of the loss and of each of the task's scores."""
    require(task in TASK_METRICS, "task", task, f"one of {sorted(TASK_METRICS)}")
    names = [f"train_{LOSS}"]
    for split in EVAL_SPLITS:
        names.extend(f"{split}_{metric}" for metric in (LOSS, *TASK_METRICS[task]))
    return names


def metric_definitions(task: str) -> list[dict[str, str]]:
    """``AlgorithmSpecification.MetricDefinitions`` for ``task`` (metric name = the logged key)."""
    return [{"Name": name, "Regex": metric_regex(*name.split("_", 1))} for name in metric_names(task)]


def parse_metrics(line: str) -> dict[str, float]:
    """The metrics a log line carries, by logged key (``nan`` and ``inf`` become floats)."""
    return {f"{m.group(1)}_{m.group(2)}": float(m.group(3)) for m in _LINE.finditer(line)}


def format_metrics(metrics: dict[str, float]) -> str:
    """One ``name=value`` per line, sorted, in the same %.6f format training logs."""
    return "\n".join(f"{name}={value:.6f}" for name, value in sorted(metrics.items()))

