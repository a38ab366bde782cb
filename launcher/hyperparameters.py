"""Training hyperparameters, typed on the laptop and sent the way SageMaker passes them: every value a string.

The training container parses ``/opt/ml/input/config/hyperparameters.json`` with ``training.config.TrainConfig``;
the launcher validates with that same class before starting a job, so a bad value fails on the laptop with the
message the job would have failed with. Booleans are sent as ``true``/``false``, integers in decimal, floats
with ``repr`` (``5e-05``). Fields left at None are not sent, so the training defaults apply and live in one place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Callable

from launcher.errors import ConfigError
from training.config import ConfigError as TrainConfigError
from training.config import TrainConfig


@dataclass(frozen=True)
class _Spec:
    kind: type
    help: str


#: one row per hyperparameter the launcher sends: its Python type and its help text (ranges are TrainConfig's)
SPECS: dict[str, _Spec] = {
    "task_name": _Spec(str, "the task to train"),
    "model_name": _Spec(str, "Hugging Face model id (default: the MiniLM embedded in the training image)"),
    "max_steps": _Spec(int, "optimiser steps; overrides num_train_epochs (-1: use epochs)"),
    "num_train_epochs": _Spec(float, "passes over the training data"),
    "use_bbox": _Spec(bool, "read the bbox column (LayoutLM)"),
    "per_device_train_batch_size": _Spec(int, "training batch size per device"),
    "per_device_eval_batch_size": _Spec(int, "evaluation batch size per device"),
    "learning_rate": _Spec(float, "peak learning rate"),
    "warmup_ratio": _Spec(float, "share of steps spent warming up"),
    "weight_decay": _Spec(float, "AdamW weight decay"),
    "max_seq_length": _Spec(int, "tokens per model input"),
    "stride": _Spec(int, "tokens shared by consecutive NER windows"),
    "gradient_accumulation_steps": _Spec(int, "batches accumulated per optimiser step"),
    "seed": _Spec(int, "random seed"),
    "eval_steps": _Spec(int, "evaluate dev every N steps (0: the training default schedule)"),
    "logging_steps": _Spec(int, "steps between train_loss log lines"),
}
REQUIRED_HYPERPARAMETERS = ("task_name",)

#: how each Python type becomes the string SageMaker passes
_FORMAT: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "true" if v else "false",
    int: str,
    float: repr,
    str: str,
}
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_FIELD_IN_MESSAGE = re.compile(r"^(\w+)=")


def _type_ok(kind: type, value: Any) -> bool:
    if kind is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


@dataclass(frozen=True)
class Hyperparameters:
    """What the training job is asked to do; see SPECS and training.config.TrainConfig for each field."""

    task_name: str
    model_name: str | None = None
    max_steps: int | None = None
    num_train_epochs: float | None = None
    use_bbox: bool | None = None
    per_device_train_batch_size: int | None = None
    per_device_eval_batch_size: int | None = None
    learning_rate: float | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    max_seq_length: int | None = None
    stride: int | None = None
    gradient_accumulation_steps: int | None = None
    seed: int | None = None
    eval_steps: int | None = None
    logging_steps: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value, kind = getattr(self, f.name), SPECS[f.name].kind
            if value is not None and not _type_ok(kind, value):
                raise ConfigError(f.name, value, _EXPECTED[kind])
        try:  # the job parses these strings with TrainConfig: fail here, with its words, not in the job
            TrainConfig.from_hyperparameters(self.as_sagemaker())
        except TrainConfigError as exc:
            match = _FIELD_IN_MESSAGE.match(str(exc))
            field = match.group(1) if match else "hyperparameters"
            raise ConfigError(field, getattr(self, field, None), "a valid value", message=str(exc)) from None

    def as_sagemaker(self) -> dict[str, str]:
        """The ``HyperParameters`` map of CreateTrainingJob: the fields that are set, as strings."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: _FORMAT[type(v)](v) for name, v in values.items() if v is not None}
