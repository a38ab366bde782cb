"""SageMaker metric definitions for our training log, and a reader for the same lines.

The line format, its writer and its reader live in ``training.metric_lines``; the metric names come from the
task table (``tasks.kinds``). This module only adds the launcher's argument checks.
"""
from __future__ import annotations

import re

from launcher.errors import require
from tasks.kinds import TASKS
from training.metric_lines import SPLITS, format_metric, logged_metric_names, parse_metric_lines
from training.metric_lines import metric_regex as _regex


def metric_regex(split: str, name: str) -> str:
    """The regex SageMaker applies to each log line; its one group captures the value."""
    require(split in SPLITS, "split", split, f"one of {SPLITS}")
    require(re.fullmatch(r"[a-z0-9_]+", name) is not None, "metric name", name, "[a-z0-9_]+")
    return _regex(f"{split}_{name}")


def metric_names(task: str) -> list[str]:
    """``train_loss``, ``dev_loss``, then ``dev_`` / ``test_`` variants of each of the task's scores."""
    require(task in TASKS, "task", task, f"one of {sorted(TASKS)}")
    return logged_metric_names(task)


def metric_definitions(task: str) -> list[dict[str, str]]:
    """``AlgorithmSpecification.MetricDefinitions`` for ``task`` (metric name = the logged key)."""
    return [{"Name": name, "Regex": metric_regex(*name.split("_", 1))} for name in metric_names(task)]


def parse_metrics(line: str) -> dict[str, float]:
    """The metrics a log line carries, by logged key (``nan`` and ``inf`` become floats)."""
    return parse_metric_lines(line)


def format_metrics(metrics: dict[str, float]) -> str:
    """One metric per line, sorted, written exactly as training logs it (``name=value;``)."""
    return "\n".join(format_metric(name, value) for name, value in sorted(metrics.items()))
