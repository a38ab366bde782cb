"""Model families: the facts derived from the model itself, and the few a table must give.

Any encoder transformers can load with a token- or sequence-classification head is served. Three facts are
derived from the model and its tokenizer when training reads the base checkpoint, and written into the task
spec so that serving never derives them again:

- the inputs its forward pass takes (``model_inputs``): ``input_ids`` and ``attention_mask``, ``token_type_ids``
  only where the config has a type vocabulary of more than one type and the forward takes them, and a row's
  extra inputs;
- whether pre-split words need a prefix space, from the tokenizer's own pre-tokenizer (``runtimes.tokenizer``:
  ``word_start``), never from ``model_type``;
- the longest input, from the config's positions (``longest_input``).

``FAMILIES`` keeps only what cannot be derived: LayoutLM's boxes, Longformer's global attention, which ONNX
Runtime fusion applies (measured per family: its optimizer knows only BERT's graph), how a graph is exported,
and GPU batch sizes. A ``model_type`` without a row gets ``DEFAULT``: derived inputs, an unfused ONNX graph
(still parity-gated), the training defaults for batch sizes. The launcher guesses the family from a model name
with ``family_of_name``, over the same table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Mapping

#: every model input the task layer knows how to build (``tasks.batching.pad``), in the order it passes them
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "bbox", "global_attention_mask")


@dataclass(frozen=True)
class Family:
    """What a model family needs that its config, forward and tokenizer do not say."""

    #: Longformer wants global attention on the first (<s>) token for classification and tagging
    global_attention_first: bool = False
    #: LayoutLM takes one ``[x0, y0, x1, y1]`` box per token, 0-1000
    bbox: bool = False
    #: the ``model_type`` under which ONNX Runtime's transformer optimizer fuses this family's exported graph,
    #: where measured to fuse and keep parity; None: exported unfused (parity-gated all the same)
    onnx_fusion: str | None = None
    #: the attention implementation the ONNX export traces ("eager" where SDPA's masks do not trace); None:
    #: the model's own
    export_attention: str | None = None
    #: per-device batch size on one 16 GB GPU (ml.g4dn's T4) when the user gives none; None: the training defaults
    gpu_batch_size: int | None = None
    #: fragments of a hub model name that suggest this family to the launcher (which loads no model)
    name_hints: tuple[str, ...] = ()

    def extra_inputs(self) -> tuple[str, ...]:
        return (("bbox",) if self.bbox else ()) + (("global_attention_mask",) if self.global_attention_first else ())


DEFAULT = Family()

FAMILIES: dict[str, Family] = {
    "bert": Family(onnx_fusion="bert", gpu_batch_size=10, name_hints=("bert", "minilm")),
    "distilbert": Family(onnx_fusion="bert", gpu_batch_size=10, name_hints=("distilbert",)),
    "roberta": Family(onnx_fusion="bert", name_hints=("roberta",)),
    "longformer": Family(global_attention_first=True, gpu_batch_size=1, name_hints=("longformer",)),
    "layoutlm": Family(bbox=True, gpu_batch_size=10, name_hints=("layoutlm",)),
    # measured: the "bert" optimizer fuses every layer of these (RoBERTa's graph, and ELECTRA's BERT-like one) and
    # keeps their logits; DeBERTa-v2, ModernBERT, MPNet and ALBERT fuse none or not all of their attention layers,
    # so they export unfused by default (archive.onnx_export)
    "xlm-roberta": Family(onnx_fusion="bert", name_hints=("xlm-roberta", "xlm-r")),
    "camembert": Family(onnx_fusion="bert", name_hints=("camembert",)),
    "deberta-v2": Family(name_hints=("deberta",)),
    "modernbert": Family(name_hints=("modernbert", "mmbert", "ettin")),
    "electra": Family(onnx_fusion="bert", name_hints=("electra",)),
    "albert": Family(name_hints=("albert",)),
    "mpnet": Family(name_hints=("mpnet",)),
}

#: the box given to special tokens; LayoutLM was pre-trained with these
CLS_BOX = (0, 0, 0, 0)
SEP_BOX = (1000, 1000, 1000, 1000)
PAD_BOX = (0, 0, 0, 0)


def family_for(model_type: str) -> Family:
    """The overrides of ``model_type`` (``config.model_type``); a family without a row gets the defaults."""
    return FAMILIES.get(model_type, DEFAULT)


def model_inputs(model_type: str, config: Mapping[str, Any], forward_params: Collection[str] | None = None
                 ) -> tuple[str, ...]:
    """The inputs the model takes, from its config (``config.to_dict()``) and its forward's parameters.

    ``token_type_ids`` only where there are segments to tell apart (``type_vocab_size`` > 1): RoBERTa-style
    models accept the input with one type, where only zeros are valid, so it is left out and they run as
    they were pre-trained. ``forward_params``: the names the forward pass takes (None: not checked).
    """
    names = ["input_ids", "attention_mask"]
    takes_types = forward_params is None or "token_type_ids" in forward_params
    if int(config.get("type_vocab_size") or 0) > 1 and takes_types:
        names.append("token_type_ids")
    names.extend(family_for(model_type).extra_inputs())
    return tuple(names)


def longest_input(config: Mapping[str, Any], position_offset: int = 0) -> int | None:
    """The most tokens one forward pass may take: the config's positions less the ids the embeddings reserve
    (RoBERTa-style embeddings number positions from ``padding_idx + 1``, so 514 positions hold 512 tokens).
    None where the config declares no positions."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or positions <= 0:
        return None
    return positions - position_offset


def family_of_name(model_name: str) -> str | None:
    """The family a model name suggests (``allenai/longformer-base-4096`` -> longformer), else None: the longest
    matching hint wins, so ``distilbert`` is not read as ``bert``."""
    lowered = model_name.lower()
    hits = [(len(hint), family) for family, row in FAMILIES.items() for hint in row.name_hints if hint in lowered]
    return max(hits)[1] if hits else None
