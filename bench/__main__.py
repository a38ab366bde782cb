"""``make bench``: every comparison side by side, in one run, one fresh process each; results to
``bench/results/<date>.json`` and a markdown table (ratios first). Benchmarks, not tests: nothing here asserts
a timing. ``--quick`` is a smoke run on tiny inputs."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
STEPS = {"classif": 40, "ner": 80}


def run_job(job: dict) -> dict:
    """One measurement in a fresh process; its RESULT line is the answer."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(job.get("threads", 2))}
    proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
    result = json.loads(lines[-1][len("RESULT "):])
    print(f"  {job['label']}: {_short(result)}", flush=True)
    return result


def _short(result: dict) -> str:
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


def prepare(task: str, quick: bool) -> dict[str, Path]:
    """Train the embedded MiniLM on the example data once, then archive it per runtime (cached in bench/work;
    a quick run's under-trained models live apart so that a full run never reuses them)."""
    from archive.build import RuntimeOptions, build
    from training.config import TrainConfig
    from training.run import train

    data = ROOT / "examples" / "data" / task
    work = WORK / ("quick" if quick else "full") / task
    checkpoint = work / "checkpoint"
    if not checkpoint.is_dir():
        steps = STEPS[task] // (4 if quick else 1)
        config = TrainConfig.from_hyperparameters({"task_name": task, "max_steps": str(steps),
                                                   "learning_rate": "1e-4", "max_seq_length": "256"})
        train(config, data, checkpoint)
    variants = {"torch": RuntimeOptions(runtime="torch"), "onnx": RuntimeOptions(data=data),
                "int8": RuntimeOptions(data=data, quantize="int8"),
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
        serving = json.loads((extracted / "serving.json").read_text())
        if name != "torch" and serving["runtime"] != "onnx":
            print(f"  {task}/{name}: fell back to torch: {serving.get('reason')}")
            continue
        out[name] = store
    out["checkpoint"] = checkpoint
    return out


def jobs_for(task: str, stores: dict, n: int, payload_mb: float) -> list[dict]:
    """Every path on the same n texts (the slow ones too), so each ratio compares the same work."""
    jobs: list[dict] = []
    for runtime in ("torch", "onnx", "int8"):
        if runtime not in stores:
            continue
        model_dir = str(stores[runtime] / "extracted")
        jobs += [
            {"label": f"{task}/direct/{runtime}", "kind": "direct", "model_dir": model_dir, "n": n},
            {"label": f"{task}/latency-direct/{runtime}", "kind": "latency", "model_dir": model_dir},
            {"label": f"{task}/served/{runtime}", "kind": "served", "store": str(stores[runtime]), "name": task,
             "n": n, "payload_mb": payload_mb},
        ]
    torch_dir = str(stores["torch"] / "extracted")
    return jobs + [
        {"label": f"{task}/padded/torch", "kind": "direct", "model_dir": torch_dir, "n": n, "pad_to_max": True},
        {"label": f"{task}/pipeline-list", "kind": "pipeline", "mode": "list", "task": task,
         "model_dir": str(stores["checkpoint"]), "n": n},
        {"label": f"{task}/pipeline-single", "kind": "pipeline", "mode": "single", "task": task,
         "model_dir": str(stores["checkpoint"]), "n": n},
    ]


def lean_jobs(stores: dict, quick: bool) -> dict[str, dict]:
    """Cold start (ONNX and torch archives), multi-model density: what serverless and multi-model endpoints pay."""
    best = "onnx" if "onnx" in stores else "torch"
    runs = 2 if quick else 5
    return {
        f"classif/cold_start/{best}": {"kind": "cold_start", "model_dir": str(stores[best] / "extracted"),
                                       "runs": runs},
        "classif/cold_start/torch": {"kind": "cold_start", "model_dir": str(stores["torch"] / "extracted"),
                                     "runs": runs},
        f"classif/density/{best}": {"kind": "density", "model_dir": str(stores[best] / "extracted"),
                                    "models": 2 if quick else 10},
    }


def run_lean(results: dict, quick: bool) -> None:
    """The lean-serving figures only (``--only lean``): archive sizes, cold starts, density."""
    from bench.cold_start import archive_sizes

    print("preparing classif models", flush=True)
    stores = prepare("classif", quick)
    results["classif_sizes"] = archive_sizes(stores)
    for label, job in lean_jobs(stores, quick).items():
        results["runs"][label] = run_job({"label": label, **job})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny inputs: checks that every path runs")
    parser.add_argument("--payload-mb", type=float, default=None, help="jsonlines payload size (Batch Transform)")
    parser.add_argument("--n", type=int, default=None, help="texts per path (default 1000; --quick 48)")
    parser.add_argument("--only", choices=("all", "lean"), default="all",
                        help="lean: archive sizes, cold starts and multi-model density only")
    args = parser.parse_args()
    n = args.n or (48 if args.quick else 1000)
    payload_mb = args.payload_mb or (0.05 if args.quick else 2.0)
    sys.path.insert(0, str(ROOT))
    from bench.cold_start import archive_sizes
    from bench.report import flops_per_record

    results: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick, "n": n,
                     "payload_mb": payload_mb, "cpus": os.cpu_count(), "runs": {}}
    if args.only == "lean":
        run_lean(results, args.quick)
        return _write(results, args.quick)
    results["runs"]["gemm"] = run_job({"label": "gemm", "kind": "gemm", "size": 512 if args.quick else 2048})
    for task in ("classif", "ner"):
        print(f"preparing {task} models", flush=True)
        stores = prepare(task, args.quick)
        for job in jobs_for(task, stores, n, payload_mb):
            results["runs"][job["label"]] = run_job(job)
        results[f"{task}_flops"] = flops_per_record(stores["checkpoint"], n)
        if task == "classif":
            best = "onnx" if "onnx" in stores else "torch"
            for workers, threads in ((1, 2), (2, 1)):
                label = f"classif/served/{best}/{workers}x{threads}"
                results["runs"][label] = run_job({"label": label, "kind": "served", "store": str(stores[best]),
                                                  "name": task, "n": n // 2, "payload_mb": payload_mb,
                                                  "workers": workers, "threads": threads})
            results["classif_sizes"] = archive_sizes(stores)
            for label, job in lean_jobs(stores, args.quick).items():
                results["runs"][label] = run_job({"label": label, **job})
    steps = 8 if args.quick else 60
    for impl in ("ours", "plain"):
        label = f"training/{impl}"
        job = {"label": label, "kind": "training", "impl": impl, "steps": steps, "batch": 16}
        results["runs"][label] = run_job(job)
    return _write(results, args.quick)


def _write(results: dict, quick: bool) -> int:
    from bench.report import markdown

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M") + ("-quick" if quick else "")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (RESULTS / f"{stamp}.md").write_text(table)
    print(table)
    print(f"results: {RESULTS / f'{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
