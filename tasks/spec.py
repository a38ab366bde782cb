"""The task spec: the small, versioned file that makes a checkpoint self-describing.

Training writes it next to the weights (``task_spec.json``); the handler reads nothing else to know what to do.
It is plain data, checked here only for what holds whatever the task; ``tasks.kinds.check_spec`` checks it
against its task's row.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.errors import SpecError
from tasks.families import KNOWN_INPUTS, family_for

#: 2 added the facts derived from the base model (``model_inputs``, ``add_prefix_space``, ``word_start_ids``)
SCHEMA_VERSION = 2
#: the versions this code reads: a version-1 spec (the five families of the old closed table) gets its facts
#: from ``V1_FACTS``
READS = (1, 2)
#: what version 1 left implicit, per family it allowed: (takes token_type_ids, needs a prefix space)
V1_FACTS = {"bert": (True, False), "distilbert": (False, False), "roberta": (False, True),
            "longformer": (False, True), "layoutlm": (True, False)}
TASK_SPEC_FILE = "task_spec.json"


@dataclass(frozen=True)
class TaskSpec:
    """Everything serving needs to encode a record and decode the model's answer the way training did."""

    task: str
    model_type: str
    labels: tuple[str, ...] = ()
    max_seq_length: int = 256
    stride: int = 32
    use_bbox: bool = False
    #: per-label decision thresholds (tuned on dev by tasks that tune them: multilabel-classif)
    thresholds: dict[str, float] = field(default_factory=dict)
    #: the inputs the model's forward takes (``tasks.families.model_inputs``); None: version 1's for the family
    model_inputs: tuple[str, ...] | None = None
    #: pre-split words are given a prefix space at tokenizer load (``runtimes.tokenizer.word_start``), as
    #: training's tokenizer was; None: version 1's for the family
    add_prefix_space: bool | None = None
    #: ids of tokens that are only a word-start marker (SentencePiece's lone "▁"): a word's label goes on its
    #: first other token, the one that says which word it is
    word_start_ids: tuple[int, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        types, prefix = V1_FACTS.get(self.model_type, (False, False))
        if self.model_inputs is None:
            extra = family_for(self.model_type).extra_inputs()
            object.__setattr__(self, "model_inputs",
                               ("input_ids", "attention_mask", *(("token_type_ids",) if types else ()), *extra))
        if self.add_prefix_space is None:
            object.__setattr__(self, "add_prefix_space", prefix)
        unknown_inputs = [n for n in self.inputs if n not in KNOWN_INPUTS]
        if unknown_inputs or self.inputs[:2] != ("input_ids", "attention_mask"):
            raise SpecError(f"model_inputs {list(self.inputs)} are not valid: expected input_ids, attention_mask, "
                            f"then any of {list(KNOWN_INPUTS[2:])}")
        if self.use_bbox and "bbox" not in self.inputs:
            raise SpecError(f"use_bbox is true but model_type {self.model_type!r} takes no boxes (use LayoutLM)")
        if len(set(self.labels)) != len(self.labels):
            raise SpecError("labels must be unique")
        if self.max_seq_length < 8:
            raise SpecError(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        # a window must advance: stride tokens overlap, so at least one new token per window
        if not 0 <= self.stride <= (self.max_seq_length - 2) // 2:
            raise SpecError(
                f"stride must be between 0 and {(self.max_seq_length - 2) // 2} for max_seq_length "
                f"{self.max_seq_length}, got {self.stride}"
            )
        unknown = set(self.thresholds) - set(self.labels)
        if unknown:
            raise SpecError(f"thresholds name labels the model does not have: {sorted(unknown)}")
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds.values()):
            raise SpecError("thresholds must lie in [0, 1]")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The model inputs, in the order runtimes pass them (never None once the spec is built)."""
        assert self.model_inputs is not None  # filled in __post_init__
        return self.model_inputs

    @property
    def prefix_space(self) -> bool:
        """Whether the tokenizer is loaded giving pre-split words a prefix space (never None once built)."""
        return bool(self.add_prefix_space)

    def threshold(self, label: str) -> float:
        return self.thresholds.get(label, 0.5)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["model_inputs"], data["word_start_ids"] = list(self.inputs), list(self.word_start_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        if not isinstance(data, dict):
            raise SpecError("a task spec must be a JSON object")
        version = data.get("schema_version")
        if isinstance(version, bool) or version not in READS:
            raise SpecError(f"task spec schema_version {version!r} is not supported (this code reads "
                            f"{' and '.join(map(str, READS))})")
        known = {f for f in cls.__dataclass_fields__}
        if version == 1:
            known -= {"model_inputs", "add_prefix_space", "word_start_ids"}
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"task spec has unknown fields {sorted(unknown)}")
        missing = {"task", "model_type"} - set(data)
        if missing:
            raise SpecError(f"task spec is missing {sorted(missing)}")
        values = dict(data)
        labels, thresholds = values.get("labels", []), values.get("thresholds", {})
        if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
            raise SpecError(f"task spec labels must be a list of strings, got {labels!r}")
        try:
            if not isinstance(thresholds, dict) or any(isinstance(v, bool) for v in thresholds.values()):
                raise ValueError
            values["thresholds"] = {str(k): float(v) for k, v in thresholds.items()}
        except (TypeError, ValueError):
            raise SpecError(f"task spec thresholds must map labels to numbers, got {thresholds!r}") from None
        values["labels"] = tuple(labels)
        for name in ("model_inputs", "word_start_ids"):
            items, kind = values.get(name), str if name == "model_inputs" else int
            if items is None:
                continue
            if not isinstance(items, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
                raise SpecError(f"task spec {name} must be a list of {kind.__name__}s, got {items!r}")
            values[name] = tuple(items)
        if not isinstance(values.get("add_prefix_space", False), bool):
            raise SpecError(f"task spec add_prefix_space must be true or false, got {values['add_prefix_space']!r}")
        values["schema_version"] = SCHEMA_VERSION  # read, the spec is this version's (a v1 file gets its facts)
        try:
            return cls(**values)
        except TypeError as exc:
            raise SpecError(f"task spec is not valid: {exc}") from None
