"""One measurement per process: ``python -m bench.worker '<json job>'`` prints one JSON result line.

Every comparison runs in its own fresh process, one after another, so no path inherits another's warm caches,
threads or memory, and nothing runs beside it (two cores: a second process halves every figure).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil

from bench.stats import latency_summary
from bench.texts import corpus
from tasks.fields import Record
from tasks.kinds import task_kind
from tasks.predict import Runner
from tasks.spec import TaskSpec


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _records(job: dict[str, Any]) -> list[Record]:
    return [Record(text=t) for t in corpus(job["n"], seed=job.get("seed", 0))]


def _runner(job: dict[str, Any]) -> tuple[TaskSpec, Any, Runner]:
    """(spec, tokenizer, runner) from an extracted archive directory, on the path SMTX_PRECISION names (as a
    worker would: ``bench.__main__.run_job`` sets it per job); the path served goes into ``_SERVED``."""
    from handlers.service import load_runner
    from runtimes.torch_runtime import read_spec

    model_dir = Path(job["model_dir"])
    spec = read_spec(model_dir)
    tokenizer, runner, plan = load_runner(model_dir, spec, job.get("threads"),
                                          precision=os.environ.get("SMTX_PRECISION", "auto"))
    _SERVED.update(path=f"{plan.runtime}-{plan.precision}", reason=plan.reason)
    return spec, tokenizer, runner


#: the path the job's runner serves (``_runner``), reported with its result
_SERVED: dict[str, str] = {}


def _timed(fn: Callable[[], Any], repeats: int = 1) -> float:
    fn()  # warm-up: first calls pay for lazy initialisation and allocator growth
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def direct(job: dict[str, Any]) -> dict[str, Any]:
    """Our tokenisation and micro-batching over the raw forward (tasks.predict with a runtime)."""
    import torch

    torch.set_num_threads(job.get("threads", 2))
    from tasks.predict import predict

    spec, tokenizer, runner = _runner(job)
    records = _records(job)
    if job.get("pad_to_max"):
        seconds = _timed(lambda: _padded_run(spec, tokenizer, runner, records))
    else:
        seconds = _timed(lambda: predict(spec, tokenizer, runner, records, max_batch_size=32))
    return {"records_per_s": len(records) / seconds, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _padded_run(spec: TaskSpec, tokenizer: Any, runner: Runner, records: list[Record]) -> None:
    """Batches of 32 in arrival order, every input padded to max_seq_length (what many serving stacks do)."""
    from tasks.batching import pad
    from tasks.encode import encode

    features = encode(spec, tokenizer, records)
    for i in range(0, len(features), 32):
        batch = pad(features[i:i + 32], spec.inputs, tokenizer.pad_token_id)
        extra = spec.max_seq_length - batch["input_ids"].shape[1]
        runner({k: np.pad(v, [(0, 0), (0, extra)] + [(0, 0)] * (v.ndim - 2)) for k, v in batch.items()})


def pipeline_path(job: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face pipeline, called the two ways users call it."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(job.get("threads", 2))
    kind = task_kind(job["task"]).pipeline_tag
    # transformers overloads pipeline() per literal task name; ours is the task row's str
    pipe = pipeline(kind, model=job["model_dir"], device=-1)  # type: ignore[call-overload]
    texts = corpus(job["n"], seed=job.get("seed", 0))
    # the token-classification pipeline takes no truncation argument (it windows long texts itself)
    extra = {} if kind == "token-classification" else {"truncation": True}
    if job["mode"] == "list":
        seconds = _timed(lambda: pipe(texts, batch_size=32, **extra))
    else:
        seconds = _timed(lambda: [pipe(t, **extra) for t in texts])
    return {"records_per_s": len(texts) / seconds, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def latency(job: dict[str, Any]) -> dict[str, Any]:
    """p50/p95/p99 of one short record straight through the runtime (the direct call /invocations wraps)."""
    import torch

    torch.set_num_threads(job.get("threads", 2))
    from tasks.fields import Record
    from tasks.predict import predict

    spec, tokenizer, runner = _runner(job)
    record = [Record(text="The team won the final match on Monday.")]
    for _ in range(20):
        predict(spec, tokenizer, runner, record)
    samples = []
    for _ in range(job.get("requests", 300)):
        started = time.perf_counter()
        predict(spec, tokenizer, runner, record)
        samples.append((time.perf_counter() - started) * 1000)
    return latency_summary(samples)


def gemm(job: dict[str, Any]) -> dict[str, Any]:
    """The machine's best fp32 GEMM rate in this run: the roof the model's FLOPs are compared with."""
    import torch

    torch.set_num_threads(job.get("threads", 2))
    n = job.get("size", 2048)
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = _timed(lambda: a @ b, repeats=5)
    return {"gflops": 2 * n ** 3 / seconds / 1e9, "size": n}


JOBS = {"direct": direct, "pipeline": pipeline_path, "latency": latency, "gemm": gemm}


def main() -> None:
    job = json.loads(sys.argv[1])
    if job["kind"] == "served":
        from bench import served

        result = served.JOBS[job["kind"]](job)
    elif job["kind"] in ("cold_start", "density"):
        from bench import cold_start

        result = cold_start.JOBS[job["kind"]](job)
    elif job["kind"] == "training":
        from bench import training_speed

        result = training_speed.run(job)
    else:
        result = JOBS[job["kind"]](job)
    result["process_peak_rss_mb"] = psutil.Process().memory_info().rss / 2**20
    result.update(_SERVED)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
