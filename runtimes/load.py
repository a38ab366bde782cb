"""The one place that turns an archive (or a training checkpoint) into a tokenizer, a runner and a ``ServePlan``.

Where, with which runtime and in which precision is decided here, once (``runtimes.device``), and logged in one
line; the ONNX path imports no torch (tests/model/test_lean_serving.py). ``handlers.service`` and the bench call it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from runtimes.checkpoint import check_output_width, has_weights, onnx_file, read_serving
from runtimes.device import ServePlan, choose, probe
from tasks.kinds import Resolved, TaskLike, as_resolved
from tasks.predict import Runner
from tasks.serving_manifest import ServingManifest

log = logging.getLogger(__name__)


def load_runner(model_dir: Path, spec: TaskLike, threads: int | None = None, gpu_id: int | None = None,
                precision: str = "auto") -> tuple[Any, Runner, ServePlan]:
    """Tokenizer, runner and the plan that says where and how they serve (``runtimes.device``), logged in one line.

    ``gpu_id``: the GPU TorchServe assigned the worker (None: the CPU, as serving.json says; torch when absent).
    The ONNX path imports tokenizers, onnxruntime and numpy only: never torch or transformers, which cost a worker
    about half a gigabyte and seconds of start-up for a model it does not run (tests/model/test_lean_serving.py).
    ``threads`` sets torch's intra-op threads only where torch serves (None: leave the process's setting).
    ``precision``: SMTX_PRECISION (``runtimes.precision``): auto, or the precision to serve on the CPU.
    """
    task = as_resolved(spec)
    serving = read_serving(model_dir)
    plan = choose(serving, probe(gpu_id, has_weights(model_dir)), precision)
    if plan.runtime in ("onnx", "openvino"):
        tokenizer, runner = _load_lean(model_dir, task, serving, threads, plan)
    else:
        tokenizer, runner, plan = _load_torch(model_dir, task, serving, threads, plan)
    log.info("%s", plan.describe())
    return tokenizer, runner, plan


def _load_lean(model_dir: Path, task: Resolved, serving: ServingManifest, threads: int | None, plan: ServePlan
               ) -> tuple[Any, Runner]:
    """ONNX Runtime's or OpenVINO's runner for the plan's file, and the serving tokenizer: no torch either way."""
    graph = model_dir / plan.file if plan.file else onnx_file(model_dir, serving)
    assert graph is not None, "choose() picks onnx or openvino only where serving.json names the model file"
    started = time.perf_counter()
    from runtimes.tokenizer import load_serving_tokenizer

    runner: Any
    if plan.runtime == "openvino":
        from runtimes.openvino_runtime import OpenVinoRunner

        imported = time.perf_counter()
        runner = OpenVinoRunner(graph, plan.precision, intra_op_threads=threads)
    else:
        from runtimes.onnx_runtime import OnnxRunner

        imported = time.perf_counter()
        runner = OnnxRunner(graph, intra_op_threads=threads, optimized=serving.graph_optimization)
    check_output_width(runner.output_width, task, graph)
    session = time.perf_counter()
    tokenizer = load_serving_tokenizer(model_dir, task.spec.prefix_space)
    # the cold-start benchmark (bench/cold_start.py) reads these figures from the log
    log.info("load steps: imports %.3f s, session %.3f s, tokenizer %.3f s", imported - started,
             session - imported, time.perf_counter() - session)
    return tokenizer, runner


def _load_torch(model_dir: Path, task: Resolved, serving: ServingManifest, threads: int | None, plan: ServePlan
                ) -> tuple[Any, Runner, ServePlan]:
    started = time.perf_counter()
    from runtimes.torch_runtime import load_checkpoint, place, set_threads

    if threads is not None:
        set_threads(threads)
    _, tokenizer, runner = load_checkpoint(model_dir, task)
    log.info("load steps: imports and model %.3f s", time.perf_counter() - started)
    if plan.device != "cpu":
        runner, plan = place(model_dir, task, serving, tokenizer, runner, plan)
    return tokenizer, runner, plan
