"""The ONNX Runtime runner: the same "padded int64 inputs by name -> logits" interface as ``TorchRunner``.

``make archive`` exports the model to ONNX and serves it with this runner only where it answered what torch
answers on the checkpoint's test set (see ``archive/parity.py``). onnxruntime is imported when a runner is
made, never at import time, so a torch-served archive does not pay for it.

Graph optimisation is done once, at ``make archive`` time (``save_optimized``): ONNX Runtime's basic and extended
rewrites are applied and the result saved, and ``serving.json`` says so (``graph_optimization``), so a worker
opens the saved graph with optimisation off instead of redoing it at every load. The extended level, not "all":
"all" adds layout rewrites tied to the CPU that ran them (and none apply to these models' MatMul graphs), while
an archive may be built on one machine and served on another.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the one output every exported graph names (``archive/onnx_export.py`` writes it)
OUTPUT_NAME = "logits"
#: what ``save_optimized`` applies, as serving.json's ``graph_optimization`` records it
SAVED_OPTIMIZATION = "extended"
#: the level a session applies at load, by what the saved graph already had (None: a graph saved unoptimised)
LOAD_LEVELS = {None: "ORT_ENABLE_ALL", SAVED_OPTIMIZATION: "ORT_DISABLE_ALL"}


def _options(ort: Any, optimized: str | None, intra_op_threads: int | None) -> Any:
    if optimized not in LOAD_LEVELS:
        raise ValueError(f"graph_optimization={optimized!r} is not known; expected one of {list(LOAD_LEVELS)}")
    if intra_op_threads is not None and intra_op_threads < 1:
        raise ValueError(f"intra_op_threads={intra_op_threads!r} is not valid; expected a positive integer")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LOAD_LEVELS[optimized])
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    return options


class OnnxRunner:
    """Runs an exported ``.onnx`` model on CPU, feeding exactly the inputs its graph declares."""

    def __init__(self, path: str | Path, intra_op_threads: int | None = None, optimized: str | None = None) -> None:
        """``intra_op_threads``: threads per forward pass (None: ONNX Runtime's default, one per core);
        ``optimized``: what ``save_optimized`` already applied to the graph (serving.json's ``graph_optimization``)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} does not exist")
        options = _options(ort, optimized, intra_op_threads)
        self.path = path
        self.session: Any = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        self.input_names: tuple[str, ...] = tuple(i.name for i in self.session.get_inputs())

    @property
    def output_width(self) -> int | str | None:
        """The last dimension of ``logits`` as the graph declares it (an int for an exported head)."""
        for output in self.session.get_outputs():
            if output.name == OUTPUT_NAME:
                return output.shape[-1] if output.shape else None
        raise KeyError(f"the ONNX model {self.path.name} has no output {OUTPUT_NAME!r}")

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        missing = [name for name in self.input_names if name not in batch]
        if missing:
            raise KeyError(f"the ONNX model {self.path.name} needs inputs {missing}; the batch has {sorted(batch)}")
        # padding (tasks.batching.pad) is already int64; the cast only guards a caller that built its own batch
        feeds = {name: np.ascontiguousarray(batch[name], dtype=np.int64) for name in self.input_names}
        logits: np.ndarray = self.session.run([OUTPUT_NAME], feeds)[0]
        return logits


def external_data_file(graph: Path) -> Path:
    """Where a graph too large for one protobuf (over 2 GB: XLM-RoBERTa large) keeps its weights: beside it, as
    ONNX Runtime looks for them (the location recorded in the graph is this file's name, relative to the graph)."""
    return graph.with_name(graph.name + ".data")


def save_optimized(src: str | Path, dst: str | Path) -> str:
    """Write ``src`` after ONNX Runtime's extended CPU graph optimisations to ``dst`` (``src`` may be ``dst``,
    unless its weights are external); returns what serving.json records as ``graph_optimization``. A graph whose
    weights sit beside it gets its own weights file beside ``dst``: left alone, ONNX Runtime would write a graph
    that still points at ``src``'s."""
    import onnxruntime as ort

    src, dst = Path(src), Path(dst)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    tmp = dst.with_name(dst.name + ".partial")
    options.optimized_model_filepath = str(tmp)
    external = external_data_file(src).is_file()
    if external:
        if src == dst:
            raise ValueError(f"{src} keeps its weights beside it: optimise it into another file")
        # ONNX Runtime names the weights file relative to the graph it writes, so the .partial graph's file is
        # written under dst's final data name directly
        external_data_file(dst).unlink(missing_ok=True)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                         external_data_file(dst).name)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
    tmp.replace(dst)
    return SAVED_OPTIMIZATION
