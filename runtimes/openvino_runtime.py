"""The OpenVINO runner: the CPU's matrix units (AMX and AVX-512 bf16) without torch, behind the same "padded
int64 inputs by name -> logits" interface as ``OnnxRunner`` and ``TorchRunner``.

``make archive`` converts the plain (unfused) ONNX export to OpenVINO's own format (``model.openvino.xml`` and
``.bin``, fp32 weights: ``save_ir``) and gates it in fp32 (parity with torch) and bf16 (the dev metric), as
``archive.precisions`` does for every path. The graph ONNX Runtime serves is no use here: OpenVINO reads its
com.microsoft fused operators, but answered differently from torch on a fused BERT (max |dp| 3.6e-2 on the
bench texts), while on the plain export it answered within 1e-7.

The precision is OpenVINO's ``INFERENCE_PRECISION_HINT``, set explicitly either way: on a CPU with native bf16
(AMX, AVX512_BF16) OpenVINO would otherwise run bf16 by default, and an fp32 path must be fp32. openvino is
imported when a runner is made, never at import time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.serving_manifest import openvino_weights

#: our precision names -> OpenVINO's inference precision hint
HINTS = {"fp32": "f32", "bf16": "bf16"}
#: the one output every exported graph names (``archive/onnx_export.py`` writes it)
OUTPUT_NAME = "logits"
IR_FILE = "model.openvino.xml"


def weights_file(xml: Path) -> Path:
    """Where an IR keeps its weights: beside its ``.xml``, as OpenVINO looks for them."""
    return xml.with_name(openvino_weights(xml.name))


class OpenVinoRunner:
    """Runs an OpenVINO IR on the CPU in ``precision`` ("fp32" or "bf16"), feeding exactly the inputs it declares."""

    def __init__(self, path: str | Path, precision: str = "fp32", intra_op_threads: int | None = None) -> None:
        import openvino as ov

        path = Path(path)
        if precision not in HINTS:
            raise ValueError(f"precision={precision!r} is not one OpenVINO serves here; expected one of {list(HINTS)}")
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ValueError(f"intra_op_threads={intra_op_threads!r} is not valid; expected a positive integer")
        if not path.is_file() or not weights_file(path).is_file():
            raise FileNotFoundError(f"OpenVINO model {path} (and its {weights_file(path).name}) does not exist")
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if intra_op_threads is not None:
            config["INFERENCE_NUM_THREADS"] = intra_op_threads
        self.path = path
        self.precision = precision
        self.compiled: Any = ov.Core().compile_model(str(path), "CPU", config)
        self.input_names: tuple[str, ...] = tuple(port.get_any_name() for port in self.compiled.inputs)
        self._output = self.compiled.output(OUTPUT_NAME)
        self._request = self.compiled.create_infer_request()
        #: what OpenVINO really runs: on a CPU without bf16 units it runs the bf16 hint as f32
        self.effective_precision = {"f32": "fp32", "bf16": "bf16"}.get(
            self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string(), "other")

    @property
    def output_width(self) -> int | str | None:
        """The last dimension of ``logits`` as the model declares it (an int for an exported head)."""
        shape = self._output.get_partial_shape()
        if shape.rank.is_dynamic or len(shape) == 0:
            return None
        last = shape[len(shape) - 1]
        return last.get_length() if last.is_static else "?"

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise KeyError(f"the OpenVINO model {self.path.name} needs inputs {missing}; the batch has {sorted(batch)}")
        feeds = {name: np.ascontiguousarray(batch[name], dtype=np.int64) for name in self.input_names}
        # one request per runner (a worker runs one batch at a time); the result is copied out of its buffer,
        # which the next call reuses
        result = self._request.infer(feeds)
        logits: np.ndarray = np.array(result[self._output], dtype=np.float32, copy=True)
        return logits


def save_ir(onnx_graph: Path, dst: Path) -> Path:
    """Convert an (unfused) ONNX graph to OpenVINO's IR at ``dst`` (``.xml``, weights in ``.bin`` beside it), with
    fp32 weights: OpenVINO's default compresses them to fp16, which an fp32 path must not."""
    import openvino as ov

    model = ov.convert_model(str(onnx_graph))
    ov.save_model(model, str(dst), compress_to_fp16=False)
    return dst
