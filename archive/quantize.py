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
                      int8_preds: Sequence[dict[str, Any]],
                      tolerance: float) -> dict[str, Any]:
    """The primary dev metric with fp32 and int8, how much int8 loses, and whether that is within ``tolerance``.

    ``loss`` is fp32 - int8 for a metric where greater is better (absolute, on its 0-1 scale), and
    (int8 - fp32) / fp32 where lower is better (relative: MSE has the scale of the target squared).
    """
    resolved = as_resolved(task)
    kind, spec = resolved.kind, resolved.spec
    gold = [r.label for r in dev]
    fp32 = float(kind.score(spec.labels, gold, fp32_preds)[kind.primary_metric])
    int8 = float(kind.score(spec.labels, gold, int8_preds)[kind.primary_metric])
    if kind.greater_is_better:
        loss, rule = fp32 - int8, "absolute drop (fp32 - int8)"
    else:
        loss = (int8 - fp32) / abs(fp32) if fp32 else (math.inf if int8 > fp32 else 0.0)
        rule = "relative increase ((int8 - fp32) / fp32)"
    return {"metric": f"dev_{kind.primary_metric}", "fp32": fp32, "int8": int8, "loss": loss, "rule": rule,
            "tolerance": tolerance, "dev_records": len(dev), "passed": loss <= tolerance}


def refusal(figures: dict[str, Any]) -> str:
    """What a failed quantization gate prints: both scores and by how much the loss missed the tolerance."""
    relative = figures["rule"].startswith("relative")
    fmt: Callable[[float], str] = (lambda v: f"{100 * v:.2f}%") if relative else (lambda v: f"{v:.4f}")
    return (f"int8 quantization refused: {figures['metric']} is {figures['int8']:.4f} with int8 against "
            f"{figures['fp32']:.4f} with fp32, a loss of {fmt(figures['loss'])} ({figures['rule']}); at most "
            f"{fmt(figures['tolerance'])} is allowed, missed by {fmt(figures['loss'] - figures['tolerance'])}. "
            "Archive without --quantize to serve fp32.")
