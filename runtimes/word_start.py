"""How a tokenizer marks the start of a word, read from its own pre-tokenizer, and the fix where it marks none.

Pure of torch and transformers (it reads and rewrites a ``tokenizers.Tokenizer``'s JSON), so both the training
loader (``runtimes.torch_runtime``) and the ONNX serving tokenizer's writer can use it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WordStart:
    """How a tokenizer's pre-tokenizer marks the start of a word, read from the pre-tokenizer itself.

    Pre-split words (NER) reach the pre-tokenizer one at a time, so a byte-level BPE without a prefix space
    (ModernBERT as released, RoBERTa's own tokenizer.json) or a Metaspace that never prepends "▁" encodes every
    word as if it continued the previous one: tokens that running text never produces. WordPiece marks
    continuations instead (``##``) and needs nothing.
    """

    #: the marker a word starts with ("Ġ" byte-level, "▁" SentencePiece), None for WordPiece-style splitting
    marker: str | None
    #: whether pre-split words get no marker as the tokenizer stands (the prefix space must be added)
    missing: bool


def word_start(pre_tokenizer: dict[str, Any] | None) -> WordStart:
    """The word-start facts of a pre-tokenizer's JSON (``backend_tokenizer``'s, nested Sequences included)."""
    for step in _steps(pre_tokenizer):
        if step.get("type") == "ByteLevel":
            return WordStart("Ġ", not step.get("add_prefix_space", True))
        if step.get("type") == "Metaspace":
            scheme = step.get("prepend_scheme", "always" if step.get("add_prefix_space", True) else "never")
            return WordStart(str(step.get("replacement", "▁")), scheme == "never")
    return WordStart(None, False)


def with_prefix_space(pre_tokenizer: dict[str, Any]) -> dict[str, Any]:
    """The pre-tokenizer JSON with every word given its marker (ByteLevel's prefix space, Metaspace "always")."""
    if pre_tokenizer.get("type") == "Sequence":
        return {**pre_tokenizer, "pretokenizers": [with_prefix_space(p) for p in pre_tokenizer["pretokenizers"]]}
    if pre_tokenizer.get("type") == "ByteLevel":
        return {**pre_tokenizer, "add_prefix_space": True}
    if pre_tokenizer.get("type") == "Metaspace":
        fixed = {**pre_tokenizer, "prepend_scheme": "always"}
        fixed.pop("add_prefix_space", None)
        return fixed
    return pre_tokenizer


def add_prefix_space(backend: Any) -> None:
    """Give pre-split words their prefix space in a ``tokenizers.Tokenizer``, in place.

    Set on the backend itself: transformers 5 honours ``add_prefix_space`` only as a load-time argument, and only
    for the classes that rebuild their pre-tokenizer from it (RoBERTa's); a checkpoint that loads as a plain
    fast tokenizer (ModernBERT's) ignores it.
    """
    from tokenizers import Tokenizer

    state = json.loads(backend.to_str())
    if state.get("pre_tokenizer") is None:
        return
    state["pre_tokenizer"] = with_prefix_space(state["pre_tokenizer"])
    backend.pre_tokenizer = Tokenizer.from_str(json.dumps(state)).pre_tokenizer


def pre_tokenizer_of(backend: Any) -> dict[str, Any] | None:
    pre: dict[str, Any] | None = json.loads(backend.to_str()).get("pre_tokenizer")
    return pre


def word_start_ids(backend: Any) -> tuple[int, ...]:
    """The id of the token that is the word-start marker alone ("▁"), where the vocabulary has one."""
    marker = word_start(pre_tokenizer_of(backend)).marker
    token_id = backend.token_to_id(marker) if marker else None
    return (int(token_id),) if token_id is not None else ()


def _steps(pre_tokenizer: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not pre_tokenizer:
        return []
    if pre_tokenizer.get("type") == "Sequence":
        return [step for p in pre_tokenizer.get("pretokenizers", []) for step in _steps(p)]
    return [pre_tokenizer]
