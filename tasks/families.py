"""Model-family quirks, in one table.

Every difference between BERT, DistilBERT, RoBERTa, Longformer and LayoutLM that the encoder, the runtimes or
the ONNX export must know lives here; nothing else in the code base compares ``model_type`` strings (the
archive asks ``family_for(...).onnx_fusion`` which graphs ONNX Runtime can fuse). One table lives elsewhere on
purpose: the launcher, which imports no model code and knows only the model's name, guesses the family from that
name to choose GPU batch sizes (``launcher/images.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from tasks.errors import SpecError


@dataclass(frozen=True)
class Family:
    """How one architecture wants its inputs, and whether ONNX Runtime can fuse its exported graph."""

    #: model inputs besides ``input_ids`` / ``attention_mask`` that the forward pass takes
    token_type_ids: bool
    #: RoBERTa-style byte-level BPE tokenizers need ``add_prefix_space=True`` for pre-split words
    add_prefix_space: bool
    #: Longformer wants global attention on the first (<s>) token for classification and tagging
    global_attention_first: bool
    #: LayoutLM takes one ``[x0, y0, x1, y1]`` box per token, 0-1000
    bbox: bool
    #: the ``model_type`` under which ONNX Runtime's transformer optimizer fuses this family's exported graph (its
    #: "bert" patterns also cover DistilBERT and RoBERTa); None: it has no fusions for the family's attention or
    #: embeddings (LayoutLM's box embeddings, Longformer's sliding-window attention), which is exported unfused
    onnx_fusion: str | None
    #: per-device batch size on one 16 GB GPU (ml.g4dn's T4) when the user gives none; None: the training defaults
    gpu_batch_size: int | None = None

    def input_names(self) -> tuple[str, ...]:
        names = ["input_ids", "attention_mask"]
        if self.token_type_ids:
            names.append("token_type_ids")
        if self.bbox:
            names.append("bbox")
        if self.global_attention_first:
            names.append("global_attention_mask")
        return tuple(names)


FAMILIES: dict[str, Family] = {
    "bert": Family(token_type_ids=True, add_prefix_space=False, global_attention_first=False, bbox=False,
                   onnx_fusion="bert", gpu_batch_size=10),
    "distilbert": Family(token_type_ids=False, add_prefix_space=False, global_attention_first=False, bbox=False,
                         onnx_fusion="bert", gpu_batch_size=10),
    "roberta": Family(token_type_ids=False, add_prefix_space=True, global_attention_first=False, bbox=False,
                      onnx_fusion="bert"),
    "longformer": Family(token_type_ids=False, add_prefix_space=True, global_attention_first=True, bbox=False,
                         onnx_fusion=None, gpu_batch_size=1),
    "layoutlm": Family(token_type_ids=True, add_prefix_space=False, global_attention_first=False, bbox=True,
                       onnx_fusion=None, gpu_batch_size=10),
}

#: the box given to special tokens; LayoutLM was pre-trained with these
CLS_BOX = (0, 0, 0, 0)
SEP_BOX = (1000, 1000, 1000, 1000)
PAD_BOX = (0, 0, 0, 0)


def family_for(model_type: str) -> Family:
    """The quirks of ``model_type`` (``config.model_type``); an unknown type names the supported ones."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise SpecError(
            f"model_type {model_type!r} is not supported; expected one of {sorted(FAMILIES)}"
        ) from None
