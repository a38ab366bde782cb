"""The ONNX export of a checkpoint's model: fp32, dynamic batch and sequence axes, fused where the family allows.

Every family is traced with the TorchScript exporter into a graph that takes the family's inputs by name and
gives ``logits``. A family whose ``onnx_fusion`` (``tasks.families``) names an ONNX Runtime optimizer model type
(BERT, DistilBERT, RoBERTa) is traced with eager attention and rewritten into the fused operators of
``archive.onnx_fusion``; the fused graph is the one the parity gate (``archive.parity``) checks and the one int8
(``archive.quantize``) quantizes. Where fusion does not apply (LayoutLM, Longformer) or fails, the plain export is
kept, and ``graph`` in ``serving.json`` says which and why.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from archive.onnx_fusion import fuse
from tasks.batching import pad
from tasks.encode import encode
from tasks.families import family_for
from tasks.fields import Record
from tasks.kinds import task_kind
from tasks.spec import TaskSpec

log = logging.getLogger(__name__)
OPSET = 17


def _logits_module(model: Any, names: tuple[str, ...]) -> Any:
    """``model`` as a module taking its inputs positionally (in ``names`` order) and returning only logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs))).logits

    # eval before export: the exporter restores the wrapper's mode on exit, recursively, so a wrapper left in
    # training mode would switch the model's dropout back on
    return LogitsOnly().eval()


def export_onnx(model: Any, spec: TaskSpec, tokenizer: Any, sample: Sequence[Record], dst: Path) -> dict[str, Any]:
    """Write ``model`` as fp32 ONNX to ``dst``: inputs named as the family's, batch and sequence axes dynamic.

    ``sample`` must encode to features of different lengths, so that the traced attention mask has padding:
    a mask of all ones may be optimised away while tracing, and the graph would then ignore padding.

    A family with an ``onnx_fusion`` gets the fused graph (see ``fuse``), or the plain one where fusion fails.
    Returns what ``serving.json`` records as ``graph``: whether it is fused, the fused operators, and why.
    """
    import torch

    family = family_for(spec.model_type)
    names, token_head = spec.inputs, task_kind(spec.task).head == "token"
    batch = pad(encode(spec, tokenizer, list(sample)), names, tokenizer.pad_token_id)
    args = tuple(torch.from_numpy(batch[name]) for name in names)
    if family.onnx_fusion is None:
        _trace(model, names, args, token_head, dst)
        return {"fused": False, "reason": f"no fused graph for {spec.model_type}: ONNX Runtime's transformer "
                                          "optimizer has no fusions for its attention or embeddings"}
    try:
        with tempfile.TemporaryDirectory(prefix="smtx-onnx-") as tmp:
            eager = Path(tmp) / "eager.onnx"
            # the optimizer recognises the eager attention's MatMul/Softmax pattern, not the graph traced from SDPA
            with _eager_attention(model):
                _trace(model, names, args, token_head, eager)
            operators = fuse(eager, dst, model.config, names, family.onnx_fusion)
    except Exception as exc:  # broad on purpose: any fusion failure means "serve the plain graph", with its reason
        log.warning("ONNX graph not fused, keeping the plain one: %s", first_line(exc))
        log.debug("ONNX fusion failed", exc_info=True)
        dst.unlink(missing_ok=True)
        _trace(model, names, args, token_head, dst)
        return {"fused": False, "reason": f"fusion failed, the plain graph is kept: {first_line(exc)}"}
    return {"fused": True, "operators": operators,
            "reason": "fused by ONNX Runtime's transformer optimizer (exact Gelu, raw attention mask, fp32)"}


def _trace(model: Any, names: tuple[str, ...], args: tuple, token_head: bool, dst: Path) -> None:
    """The TorchScript export of ``model`` on ``args`` to ``dst``."""
    import torch

    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch", 1: "sequence"} if token_head else {0: "batch"}
    with warnings.catch_warnings():
        # tracer warnings about Python branches on shapes are expected; the parity check is what verifies them
        warnings.simplefilter("ignore")
        # the TorchScript exporter: still shipped with torch 2.13, it exports these models in under a second
        # where the dynamo exporter takes tens of seconds for the same graph (and also fails on Longformer)
        torch.onnx.export(_logits_module(model, names), args, str(dst), input_names=list(names),
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    model.eval()


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[Any]:
    """``model`` with eager attention inside the block, its own implementation (SDPA by default) after it."""
    before = model.config._attn_implementation
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before is not None and model.config._attn_implementation != before:
            model.set_attn_implementation(before)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s type and the first line of its message: a reason short enough for serving.json and a log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:limit]}"
