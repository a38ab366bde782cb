"""Trainer callbacks: ``train_loss=...;`` lines for SageMaker metric regexes."""
from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from training.metric_lines import metric_lines

log = logging.getLogger("training.metrics")
#: what the Trainer adds to its evaluation logs besides the scores: timings, not metrics
_EVAL_TIMINGS = ("_runtime", "_per_second")


class MetricLines(TrainerCallback):
    """Logs the training loss and dev scores as ``name=value;`` lines while training runs."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        lines = metric_lines("train", {"loss": logs["loss"]}, state.global_step) if "loss" in logs else []
        scores = {key[len("eval_"):]: value for key, value in logs.items()
                  if key.startswith("eval_") and not key.endswith(_EVAL_TIMINGS)}
        for line in lines + metric_lines("dev", scores, state.global_step):
            log.info(line)


class Interrupted(Exception):
    """A stop was requested (SIGTERM from SageMaker or a spot interruption) before the run finished."""


class StopRequest:
    """Set from a signal handler; checked at safe points. Raising inside a signal handler is not safe: the
    exception lands wherever the main thread happens to be, and code such as logging swallows it."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        self.reason = reason

    def check(self) -> None:
        if self.reason is not None:
            raise Interrupted(self.reason)


class StopOnRequest(TrainerCallback):
    """Ends training at the next step once a stop is requested."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.stop.reason is not None:
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False
