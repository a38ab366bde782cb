"""The ONNX Runtime runner: the same "padded int64 inputs by name -> logits" interface as ``TorchRunner``.

``make archive`` exports the model to ONNX and serves it with this runner only where it answered what torch
answers on the checkpoint's test set (see ``archive/parity.py``). onnxruntime is imported when a runner is
made, never at import time, so a torch-served archive does not pay for it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the one output every exported graph names (``archive/onnx_export.py`` writes it)
OUTPUT_NAME = "logits"


class OnnxRunner:
    """Runs an exported ``.onnx`` model on CPU, feeding exactly the inputs its graph declares."""

    def __init__(self, path: str | Path, intra_op_threads: int | None = None) -> None:
        """``intra_op_threads``: threads per forward pass (None: ONNX Runtime's default, one per core)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        if intra_op_threads is not None and intra_op_threads < 1:
            raise ValueError(f"intra_op_threads={intra_op_threads!r} is not valid; expected a positive integer")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        self.path = path
        self.session: Any = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        self.input_names: tuple[str, ...] = tuple(i.name for i in self.session.get_inputs())

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise KeyError(f"the ONNX model {self.path.name} needs inputs {missing}; the batch has {sorted(batch)}")
        # padding (tasks.batching.pad) is already int64; the cast only guards a caller that built its own batch
        feeds = {name: np.ascontiguousarray(batch[name], dtype=np.int64) for name in self.input_names}
        return self.session.run([OUTPUT_NAME], feeds)[0]
