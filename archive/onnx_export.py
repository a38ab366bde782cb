"""The ONNX export of a checkpoint's model: fp32, dynamic batch and sequence axes, fused where the family allows.

Every family is traced with the TorchScript exporter into a graph that takes the family's inputs by name and
gives ``logits``. A family whose ``onnx_fusion`` (``tasks.families``) names an ONNX Runtime optimizer model type
(BERT, DistilBERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA) is traced with eager attention and rewritten into the
fused operators of ``archive.onnx_fusion``; the fused graph is kept only where it gives torch's logits on the
export sample, and it is the one the parity gate (``archive.parity``) checks and the one int8
(``archive.quantize``) quantizes. Where fusion does not apply (LayoutLM, Longformer, DeBERTa-v2, ModernBERT, MPNet,
ALBERT: the optimizer fuses none or not all of their attention layers), fails or changes the logits, the plain
export is kept, and ``graph`` in ``serving.json`` says which and why.

The plain graph is traced with the family's ``export_attention`` where its row names one, else with the model's
own attention (SDPA by default in transformers 5), and with eager attention where that does not trace.
Weights over 2 GB (XLM-RoBERTa large) cannot sit in one protobuf: ``save_graph`` then writes them to
``model.onnx.data`` beside ``model.onnx``, where ONNX Runtime looks for them.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from archive.onnx_fusion import fuse
from runtimes.onnx_runtime import external_data_file
from tasks.batching import pad
from tasks.encode import encode
from tasks.fields import Record
from tasks.kinds import TaskLike, as_resolved

log = logging.getLogger(__name__)
OPSET = 17
#: weights (bytes) above which ``save_graph`` writes them beside the graph: one protobuf cannot exceed 2 GiB
#: (XLM-RoBERTa large's fp32 weights are 2.24 GB); 1.75 GiB leaves room for the graph's nodes
EXTERNAL_DATA_ABOVE = 2**31 - 2**28
#: how far the fused graph's logits may be from torch's on the export sample before the plain graph is kept:
#: the parity gate's default for probabilities, which a logit within it keeps its probabilities within
FUSED_TOLERANCE = 1e-5


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


def export_onnx(model: Any, task: TaskLike, tokenizer: Any, sample: Sequence[Record], dst: Path, *,
                external_data_above: int = EXTERNAL_DATA_ABOVE, fused: bool = True) -> dict[str, Any]:
    """Write ``model`` as fp32 ONNX to ``dst``: inputs named as the family's, batch and sequence axes dynamic.

    ``sample`` must encode to features of different lengths, so that the traced attention mask has padding:
    a mask of all ones may be optimised away while tracing, and the graph would then ignore padding.

    A family with an ``onnx_fusion`` gets the fused graph (see ``fuse``), or the plain one where fusion fails or
    changes the logits; ``fused=False`` always the plain one (OpenVINO's, ``archive.precisions``). Weights over
    ``external_data_above`` bytes go to ``<dst>.data`` beside ``dst``.
    Returns what ``serving.json`` records as ``graph``: whether it is fused, the fused operators, and why.
    """
    import torch

    resolved = as_resolved(task)
    family, names, token_head = resolved.family, resolved.spec.inputs, resolved.kind.head == "token"
    batch = pad(encode(resolved, tokenizer, list(sample)), names, tokenizer.pad_token_id)
    args = tuple(torch.from_numpy(batch[name]) for name in names)
    # a family row may name the attention to export with; a family without one (or without a row) exports with
    # the model's own and falls back to eager where that does not trace
    return export_graph(model, names, args, token_head, dst, fusion=family.onnx_fusion if fused else None,
                        attention=family.export_attention, external_data_above=external_data_above)


def export_graph(model: Any, names: tuple[str, ...], args: tuple[Any, ...], token_head: bool, dst: Path, *,
                 fusion: str | None = None, attention: str | None = None,
                 external_data_above: int = EXTERNAL_DATA_ABOVE) -> dict[str, Any]:
    """``export_onnx`` on model inputs already padded (``args``, in ``names`` order): the fused graph where
    ``fusion`` names an optimizer model type and the fused graph gives torch's logits, else the plain one traced
    with ``attention`` (None: the model's own implementation)."""
    with tempfile.TemporaryDirectory(prefix="smtx-onnx-") as tmp:
        if fusion is None:
            used = _plain(model, names, args, token_head, dst, attention, Path(tmp), external_data_above)
            return {"fused": False, "attention": used,
                    "reason": f"no fused graph for {model.config.model_type}: ONNX Runtime's transformer optimizer "
                              "fuses none or not all of its attention layers, or it was never measured to "
                              "(tasks.families)"}
        try:
            eager = Path(tmp) / "eager" / "model.onnx"
            # the optimizer recognises the eager attention's MatMul/Softmax pattern, not the graph traced from SDPA
            with _attention(model, "eager"):
                _trace(model, names, args, token_head, eager)
            graph, operators = fuse(eager, model.config, names, fusion)
            save_graph(graph, dst, external_data_above)
            del graph  # as large as the weights (2 GB and more): freed before ONNX Runtime loads the saved graph
            _check_logits(model, names, args, dst)
        except Exception as exc:  # broad on purpose: any fusion failure means "serve the plain graph", with its reason
            log.warning("ONNX graph not fused, keeping the plain one: %s", first_line(exc))
            log.debug("ONNX fusion failed", exc_info=True)
            remove_graph(dst)
            used = _plain(model, names, args, token_head, dst, attention, Path(tmp) / "plain", external_data_above)
            return {"fused": False, "attention": used,
                    "reason": f"fusion failed, the plain graph is kept: {first_line(exc)}"}
    return {"fused": True, "operators": operators, "attention": "eager",
            "reason": "fused by ONNX Runtime's transformer optimizer (exact Gelu, raw attention mask, fp32)"}


def _plain(model: Any, names: tuple[str, ...], args: tuple[Any, ...], token_head: bool, dst: Path,
           attention: str | None, tmp: Path, external_data_above: int) -> str:
    """Trace the unfused graph to ``dst`` with ``attention`` (None: the model's own), or with eager attention
    where that does not trace; returns the implementation the graph was traced with."""
    import onnx

    wanted = attention or model.config._attn_implementation or "eager"
    try:
        with _attention(model, wanted):
            _trace(model, names, args, token_head, tmp / wanted / "model.onnx")
        used = wanted
    except Exception as exc:  # broad on purpose: a trace that fails with one attention may pass with eager
        if wanted == "eager":
            raise
        log.warning("the %s attention did not trace, exporting with eager attention: %s", wanted, first_line(exc))
        with _attention(model, "eager"):
            _trace(model, names, args, token_head, tmp / "eager" / "model.onnx")
        used = "eager"
    save_graph(onnx.load(str(tmp / used / "model.onnx")), dst, external_data_above)
    return used


def _trace(model: Any, names: tuple[str, ...], args: tuple[Any, ...], token_head: bool, dst: Path) -> None:
    """The TorchScript export of ``model`` on ``args`` to ``dst``, in a folder of its own: above 2 GB the
    exporter writes the weights as files beside ``dst``, which ``save_graph`` then reads back."""
    import torch

    dst.parent.mkdir(parents=True, exist_ok=True)
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


def save_graph(graph: Any, dst: Path, external_data_above: int = EXTERNAL_DATA_ABOVE) -> None:
    """Write ``graph`` (an ``onnx.ModelProto``, weights loaded) to ``dst``: one file, or, where its weights
    exceed ``external_data_above`` bytes, the graph in ``dst`` and every weight of 1 KiB or more in
    ``external_data_file(dst)``."""
    import onnx

    remove_graph(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    weights = sum(len(tensor.raw_data) for tensor in graph.graph.initializer)
    if weights <= external_data_above:
        onnx.save_model(graph, str(dst))
        return
    log.info("ONNX weights are %.2f GB: writing them to %s beside the graph", weights / 1e9,
             external_data_file(dst).name)
    onnx.save_model(graph, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=external_data_file(dst).name, size_threshold=1024)


def remove_graph(dst: Path) -> None:
    """Remove ``dst`` and its external data file, if any (``onnx.save_model`` appends to an existing one)."""
    dst.unlink(missing_ok=True)
    external_data_file(dst).unlink(missing_ok=True)


def _check_logits(model: Any, names: tuple[str, ...], args: tuple[Any, ...], path: Path) -> None:
    """Raise unless the graph at ``path`` gives torch's logits on ``args`` within ``FUSED_TOLERANCE``."""
    import numpy as np
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = model(**dict(zip(names, args))).logits.float().numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {name: arg.numpy() for name, arg in zip(names, args)})[0]
    if got.ndim == 3:  # a token head: only the real tokens' logits are read, padding's are not
        real = args[names.index("attention_mask")].numpy().astype(bool)
        got, expected = got[real], expected[real]
    diff = float(np.abs(got - expected).max())
    if not diff <= FUSED_TOLERANCE:  # also catches NaN
        raise RuntimeError(f"the fused graph's logits differ from torch's by {diff:.2e} "
                           f"(more than {FUSED_TOLERANCE:g}) on the export sample")


@contextlib.contextmanager
def _attention(model: Any, implementation: str) -> Iterator[Any]:
    """``model`` with ``implementation`` attention inside the block, its own implementation after it.

    Models with one implementation only (DeBERTa-v2, MPNet, Longformer: eager) keep it without a warning."""
    before = model.config._attn_implementation
    if before != implementation:
        model.set_attn_implementation(implementation)
    try:
        yield model
    finally:
        if before is not None and model.config._attn_implementation != before:
            model.set_attn_implementation(before)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s type and the first line of its message: a reason short enough for serving.json and a log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:limit]}"
