"""``make gpu-check``: the GPU end to end, on a machine with CUDA; one line and exit 0 on a machine without.

For each task it trains the embedded MiniLM on ``examples/data/<task>`` with mixed precision (``auto``), archives
the checkpoint as ``make archive`` does, serves it through TorchServe and checks that the server's answers on
test.csv equal the training-side predictions (which ``training.run`` scores on the CPU in fp32): same labels,
probabilities within ``PROBA_TOLERANCE``. Then the GPU bench rows, on the classif and ner models: records/s and
p50 latency of our stack on the GPU in fp16 and fp32, our CPU stack, the Hugging Face pipeline on the GPU, and the
fraction of the GPU's measured matmul peak that our fp16/fp32 forward reaches. Results go to
``bench/results/gpu-check-<date>.json``; the exit status is 1 when a parity check fails.

Benchmarks, not tests: no timing is asserted. Nothing here has run on a GPU yet (the machine that wrote it had
none); the figures it writes are the first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from tasks.kinds import TASKS as TASK_TABLE
from tasks.kinds import task_kind
from tasks.serving_manifest import SERVING_FILE, ServingManifest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "gpu"
TASKS = tuple(TASK_TABLE)  # every task of the table
#: fp16 autocast in training against fp32 CPU scoring of the same checkpoint is not what this compares: both
#: sides score the same fp32 weights; what differs is the serving runtime (ONNX or torch) and its batching
PROBA_TOLERANCE = 1e-4
SHORT_TEXT = "The team won the final match on Monday."


def skip_reason() -> str | None:
    """Why this machine cannot run the check (None: it can)."""
    from training.device import probe

    facts = probe({})
    if facts.cuda:
        return None
    import torch

    build = f"a CUDA {facts.cuda_build} build" if facts.cuda_build else "a CPU build"
    return f"no CUDA GPU visible (torch {torch.__version__} is {build})"


def train_and_archive(task: str, steps: int, work: Path) -> dict[str, Path]:
    """Checkpoint (trained with mixed_precision=auto on the GPU) and the archive `make archive` would build."""
    from archive.build import RuntimeOptions, build
    from training.config import TrainConfig
    from training.run import train

    data, checkpoint, store = ROOT / "examples" / "data" / task, work / task / "checkpoint", work / task / "store"
    if not checkpoint.is_dir():
        config = TrainConfig.from_hyperparameters({"task_name": task, "max_steps": str(steps),
                                                   "learning_rate": "1e-4", "mixed_precision": "auto"})
        train(config, data, checkpoint)
    if not (store / f"{task}.mar").is_file():
        build(checkpoint, store, name=task, runtime=RuntimeOptions(data=data))
    return {"data": data, "checkpoint": checkpoint, "store": store}


def served_parity(task: str, paths: dict[str, Path], work: Path) -> dict[str, Any]:
    """Serve the archive through TorchServe and compare its answers on test.csv with the training-side ones."""
    from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port
    from training.data import load_dataset

    records = [{"text": r.text} for r in load_dataset(paths["data"], task, False).test]
    expected = [json.loads(line) for line in (paths["checkpoint"] / "test_predictions.jsonl").read_text().splitlines()]
    port = free_port()
    config = TorchServeConfig(model_store=paths["store"], inference_address=f"http://127.0.0.1:{port}",
                              management_address=f"http://127.0.0.1:{free_port()}",
                              metrics_address=f"http://127.0.0.1:{free_port()}", load_models=[f"{task}={task}.mar"],
                              workers=1, max_request_bytes=64 * 2**20, max_response_bytes=64 * 2**20)
    (work / task / "ts").mkdir(parents=True, exist_ok=True)
    server = TorchServe(config, work / task / "ts", stdout=open(work / task / "ts.log", "wb"))
    try:
        server.wait_ready(task, timeout=600)
        got = _post_json(f"{config.inference_address}/predictions/{task}", {"data": records})["predictions"]
    finally:
        server.stop()
    return _compare(task, got, expected) | {"serving": _serving_json(paths["store"])}


def _post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


def _compare(task: str, got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> dict[str, Any]:
    """Same labels (regression: values within the tolerance), and the largest probability gap."""
    gaps = [abs(a - b) for g, e in zip(got, expected) if "proba" in e for a, b in zip(_flat(g["proba"]),
                                                                                      _flat(e["proba"]))]
    if not task_kind(task).has_labels:  # regression: the values themselves
        gaps += [abs(float(g["pred"]) - float(e["pred"])) for g, e in zip(got, expected)]
        same_labels = True
    else:
        same_labels = [g["pred"] for g in got] == [e["pred"] for e in expected]
    gap = max(gaps, default=0.0)
    return {"records": len(expected), "answers": len(got), "same_labels": same_labels, "max_proba_gap": gap,
            "passed": len(got) == len(expected) and same_labels and gap <= PROBA_TOLERANCE}


def _flat(value: Any) -> list[float]:
    """proba is a list, a dict of label -> probability, or (NER) a list of those per word."""
    if isinstance(value, dict):
        return [float(v) for _, v in sorted(value.items())]
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [float(value)]


def _serving_json(store: Path) -> dict[str, Any]:
    import tarfile

    with tarfile.open(store / "model.tar.gz") as tf:
        member = tf.extractfile(SERVING_FILE)
        return ServingManifest.from_dict(json.loads(member.read()) if member else {}).to_dict()


class CudaRunner:
    """The runtimes' "run these tensors" interface on the GPU, fp32 or fp16 (the bench's own, until the torch
    runtime takes a device): numpy in, fp32 numpy logits out, so tasks.predict decodes as it always does."""

    def __init__(self, model: Any, input_names: tuple[str, ...], half: bool) -> None:
        import torch

        self._torch, self.input_names = torch, input_names
        self.model = model.to("cuda").eval()
        if half:
            self.model = self.model.half()

    def __call__(self, batch: dict[str, Any]) -> Any:
        torch = self._torch
        inputs = {n: torch.from_numpy(batch[n]).to("cuda", non_blocking=True) for n in self.input_names}
        with torch.inference_mode():
            return self.model(**inputs).logits.float().cpu().numpy()


def _best_seconds(fn: Callable[[], Any], repeats: int = 3) -> float:
    import torch

    fn()  # warm-up: CUDA context, cuBLAS handles, allocator
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_peak(size: int = 8192) -> dict[str, float]:
    """The GPU's measured dense matmul rate in fp32 and fp16 (TFLOP/s): the roof our forward is compared with."""
    import torch

    peak = {}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        a, b = (torch.randn(size, size, device="cuda", dtype=dtype) for _ in range(2))
        peak[name] = 2 * size ** 3 / _best_seconds(partial(torch.matmul, a, b), repeats=5) / 1e12
    return peak


def gpu_rows(task: str, checkpoint: Path, n: int, peak: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Our decode path on the GPU (fp32, fp16) and the HF pipeline on the GPU, on the same n texts."""
    from bench.report import flops_per_record
    from bench.stats import latency_summary
    from bench.texts import corpus
    from runtimes.torch_runtime import load_checkpoint
    from tasks.fields import Record
    from tasks.predict import predict

    records, rows = [Record(text=t) for t in corpus(n)], {}
    flops = flops_per_record(checkpoint, n)["sorted"]
    for precision in ("fp32", "fp16"):
        spec, tokenizer, cpu_runner = load_checkpoint(checkpoint)
        runner = CudaRunner(cpu_runner.model, spec.inputs, precision == "fp16")
        seconds = _best_seconds(partial(predict, spec, tokenizer, runner, records, max_batch_size=64))
        samples = []
        for _ in range(300):
            started = time.perf_counter()
            predict(spec, tokenizer, runner, [Record(text=SHORT_TEXT)])
            samples.append((time.perf_counter() - started) * 1000)
        rows[f"{task}/gpu-direct/{precision}"] = {
            "records_per_s": n / seconds, "latency": latency_summary(samples[20:]),
            "fraction_of_matmul_peak": n / seconds * flops / (peak[precision] * 1e12)}
    rows[f"{task}/gpu-pipeline-list"] = _pipeline_row(task, checkpoint, corpus(n))
    return rows


def _pipeline_row(task: str, checkpoint: Path, texts: list[str]) -> dict[str, Any]:
    from transformers import pipeline

    kind = task_kind(task).pipeline_tag
    # transformers overloads pipeline() per literal task name; ours is the task row's str
    pipe = pipeline(kind, model=str(checkpoint), device=0)  # type: ignore[call-overload]
    extra = {} if kind == "token-classification" else {"truncation": True}
    seconds = _best_seconds(lambda: pipe(texts, batch_size=32, **extra), repeats=1)
    return {"records_per_s": len(texts) / seconds}


def stack_rows(task: str, store: Path, n: int) -> dict[str, dict[str, Any]]:
    """Our served stack (whatever runtime and device serving.json picks) and our CPU stack, each in a fresh
    process, through `make bench`'s own jobs."""
    import os
    import tarfile

    from bench.__main__ import run_job

    extracted = store / "extracted"
    if not extracted.is_dir():
        with tarfile.open(store / "model.tar.gz") as tf:
            tf.extractall(extracted, filter="data")
    return {
        f"{task}/served": run_job({"label": f"{task}/served", "kind": "served", "store": str(store), "name": task,
                                   "n": n, "payload_mb": 2.0}),
        f"{task}/cpu-direct": run_job({"label": f"{task}/cpu-direct", "kind": "direct", "model_dir": str(extracted),
                                       "n": n, "threads": os.cpu_count() or 1}),
    }


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The issue's targets, as measured ratios and gaps (None where a row is missing)."""
    def rate(label: str) -> float | None:
        return runs.get(label, {}).get("records_per_s")

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    out: dict[str, float | None] = {}
    for task in ("classif", "ner"):
        out[f"{task}: gpu fp16 / gpu fp32 (target >= 2)"] = ratio(rate(f"{task}/gpu-direct/fp16"),
                                                                  rate(f"{task}/gpu-direct/fp32"))
        out[f"{task}: gpu fp16 / hf pipeline on gpu (target >= 5)"] = ratio(rate(f"{task}/gpu-direct/fp16"),
                                                                            rate(f"{task}/gpu-pipeline-list"))
        out[f"{task}: gpu fp16 / our cpu stack"] = ratio(rate(f"{task}/gpu-direct/fp16"), rate(f"{task}/cpu-direct"))
        served = runs.get(f"{task}/served", {}).get("latency_sequential", {}).get("p50_ms")
        direct = runs.get(f"{task}/gpu-direct/fp16", {}).get("latency", {}).get("p50_ms")
        overhead = served - direct if served and direct else None
        out[f"{task}: p50 /invocations - direct call, ms (target <= 3)"] = overhead
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--steps", type=int, default=60, help="training steps per task")
    parser.add_argument("--n", type=int, default=2000, help="texts per bench row")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    reason = skip_reason()
    if reason:
        print(f"gpu-check: skipped: {reason}")
        return 0
    import torch

    from training.logs import setup_logging

    setup_logging()
    results: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                               "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "parity": {},
                               "peak_tflops": matmul_peak(), "runs": {}}
    for task in args.tasks:
        paths = train_and_archive(task, args.steps, WORK)
        results["parity"][task] = served_parity(task, paths, WORK)
        if task in ("classif", "ner"):
            results["runs"] |= gpu_rows(task, paths["checkpoint"], args.n, results["peak_tflops"])
            results["runs"] |= stack_rows(task, paths["store"], args.n)
    results["ratios"] = ratios(results["runs"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"gpu-check-{dt.datetime.now():%Y-%m-%d-%H%M}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps({"parity": results["parity"], "ratios": results["ratios"]}, indent=2))
    print(f"results: {out}")
    return 0 if all(p["passed"] for p in results["parity"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
