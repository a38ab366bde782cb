"""int8 for serving, behind a gate on the task's primary dev metric.

``quantize="int8"`` adds dynamic int8 quantization of the graph the parity gate passed, kept only when the task's
primary dev metric loses at most ``quantize_tolerance``; otherwise ``QuantizationRefused`` says by how much it
missed. The rule (see ``quantization_gate``): a metric where greater is better (the F1 scores, on a 0-1 scale)
may drop by at most ``tolerance`` in absolute terms (0.005 = 0.5 points); a metric where lower is better
(regression's MSE, whose scale depends on the target) may grow by at most ``tolerance`` relative to fp32
(0.005 = 0.5 %).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

from tasks.fields import Record
from tasks.kinds import TaskLike, as_resolved


class QuantizationRefused(RuntimeError):
    """int8 was asked for but cannot be served: the gate missed (``figures`` says by how much) or no ONNX."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantization of ``src``'s weights (activations are quantized at run time).

    ``src`` is the graph the fp32 gate passed, fused where it could be: ONNX Runtime quantizes after fusion, and
    its fused Attention becomes QAttention.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # a fused graph's contrib operators (Attention, SkipLayerNormalization, ...) have no ONNX type inference:
    # their outputs are float, which the quantizer must be told
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


def quantization_gate(task: TaskLike, dev: Sequence[Record], fp32_preds: Sequence[dict[str, Any]],
                      int8_preds: Sequence[dict[str, Any]], tolerance: float, name: str = "int8") -> dict[str, Any]:
    """The primary dev metric with fp32 and with the reduced precision ``name`` (int8, bf16), how much it loses,
    and whether that is within ``tolerance``.

    ``loss`` is fp32 - ``name`` for a metric where greater is better (absolute, on its 0-1 scale), and
    (``name`` - fp32) / fp32 where lower is better (relative: MSE has the scale of the target squared).
    """
    resolved = as_resolved(task)
    kind, spec = resolved.kind, resolved.spec
    gold = [r.label for r in dev]
    fp32 = float(kind.score(spec.labels, gold, fp32_preds)[kind.primary_metric])
    reduced = float(kind.score(spec.labels, gold, int8_preds)[kind.primary_metric])
    if kind.greater_is_better:
        loss, rule = fp32 - reduced, f"absolute drop (fp32 - {name})"
    else:
        loss = (reduced - fp32) / abs(fp32) if fp32 else (math.inf if reduced > fp32 else 0.0)
        rule = f"relative increase (({name} - fp32) / fp32)"
    return {"metric": f"dev_{kind.primary_metric}", "fp32": fp32, name: reduced, "loss": loss, "rule": rule,
            "tolerance": tolerance, "dev_records": len(dev), "passed": loss <= tolerance}


def refusal(figures: dict[str, Any], name: str = "int8") -> str:
    """What a failed dev gate prints: both scores and by how much the loss missed the tolerance."""
    return (f"int8 quantization refused: {shortfall(figures, name)}. Archive without --quantize to serve fp32."
            if name == "int8" else f"{name} refused: {shortfall(figures, name)}")


def shortfall(figures: dict[str, Any], name: str) -> str:
    """A dev gate's scores and by how much its loss missed (or met) the tolerance, in the metric's own terms."""
    relative = figures["rule"].startswith("relative")
    fmt: Callable[[float], str] = (lambda v: f"{100 * v:.2f}%") if relative else (lambda v: f"{v:.4f}")
    verdict = ("within it" if figures["passed"] else f"missed by {fmt(figures['loss'] - figures['tolerance'])}")
    return (f"{figures['metric']} is {figures[name]:.4f} with {name} against {figures['fp32']:.4f} with fp32, a "
            f"loss of {fmt(figures['loss'])} ({figures['rule']}); at most {fmt(figures['tolerance'])} is allowed, "
            f"{verdict}")
