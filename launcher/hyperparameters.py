"""Training hyperparameters, typed on the laptop and sent the way SageMaker passes them: every value a string.

The training container reads ``/opt/ml/input/config/hyperparameters.json``, where SageMaker writes each value
as a JSON string. Booleans are sent as ``true``/``false``, integers in decimal, floats with ``repr`` (``5e-05``,
``0.1``). Fields left at None are not sent, so the training code's own defaults apply and live in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from launcher.errors import ConfigError, require
from tasks.kinds import TASKS


@dataclass(frozen=True)
class _Spec:
    kind: type
    ok: Callable[[Any], bool]
    expected: str
    help: str


def _positive_int(help: str) -> _Spec:
    return _Spec(int, lambda v: v >= 1, "an integer >= 1", help)


#: one row per hyperparameter the training entrypoint accepts: its type, its valid range and its help text
SPECS: dict[str, _Spec] = {
    "task_name": _Spec(str, lambda v: v in TASKS, f"one of {sorted(TASKS)}", "the task to train"),
    "model_name": _Spec(str, lambda v: bool(v.strip()), "a Hugging Face model id or path",
                        "pretrained model to fine-tune"),
    "max_steps": _positive_int("stop after this many optimiser steps (overrides num_train_epochs)"),
    "num_train_epochs": _Spec(float, lambda v: v > 0, "a number > 0", "passes over the training data"),
    "use_bbox": _Spec(bool, lambda v: True, "true or false", "read the bbox column (LayoutLM)"),
    "per_device_train_batch_size": _positive_int("training batch size per device"),
    "per_device_eval_batch_size": _positive_int("evaluation batch size per device"),
    "learning_rate": _Spec(float, lambda v: 0 < v < 1, "a number in (0, 1)", "peak learning rate"),
    "warmup_ratio": _Spec(float, lambda v: 0 <= v < 1, "a number in [0, 1)", "share of steps spent warming up"),
    "weight_decay": _Spec(float, lambda v: 0 <= v < 1, "a number in [0, 1)", "AdamW weight decay"),
    "max_seq_length": _Spec(int, lambda v: v >= 8, "an integer >= 8", "tokens per model input"),
    "stride": _Spec(int, lambda v: v >= 0, "an integer >= 0", "tokens shared by consecutive NER windows"),
    "gradient_accumulation_steps": _positive_int("batches accumulated per optimiser step"),
    "seed": _Spec(int, lambda v: v >= 0, "an integer >= 0", "random seed"),
}

#: how each Python type becomes the string SageMaker passes
_FORMAT: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "true" if v else "false",
    int: str,
    float: repr,
    str: str,
}


def _type_ok(kind: type, value: Any) -> bool:
    if kind is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


@dataclass(frozen=True)
class Hyperparameters:
    """What the training job is asked to do; see SPECS for each field's meaning and range."""

    task_name: str
    model_name: str
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

    def __post_init__(self) -> None:
        for f in fields(self):
            value, spec = getattr(self, f.name), SPECS[f.name]
            if value is None:
                continue
            if not _type_ok(spec.kind, value) or not spec.ok(value):
                raise ConfigError(f.name, value, spec.expected)
        if self.stride is not None and self.max_seq_length is not None:
            limit = (self.max_seq_length - 2) // 2  # the rule tasks.spec.TaskSpec applies in the job
            require(self.stride <= limit, "stride", self.stride,
                    f"at most {limit} for max_seq_length {self.max_seq_length}")

    def as_sagemaker(self) -> dict[str, str]:
        """The ``HyperParameters`` map of CreateTrainingJob: the fields that are set, as strings."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: _FORMAT[type(v)](v) for name, v in values.items() if v is not None}
