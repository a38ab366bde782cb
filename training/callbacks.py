"""Trainer callbacks: ``train_loss=...;`` lines for SageMaker metric regexes."""
from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger("training.metrics")


class MetricLines(TrainerCallback):
    """Logs the training loss and dev scores as ``name=value;`` lines while training runs."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            log.info("train_loss=%.6f; step=%d;", float(logs["loss"]), state.global_step)
        for key, value in logs.items():
            if key.startswith("eval_") and isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second")):
                log.info("dev_%s=%.6f; step=%d;", key[len("eval_"):], float(value), state.global_step)
