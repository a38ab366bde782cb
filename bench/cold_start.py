"""What serverless and multi-model endpoints pay for: cold start, worker memory, archive size, model density.

- ``cold_start``: ``serve`` (SageMaker's single-model layout) to the first successful ``/invocations``, ``runs``
  times, each broken down by the timestamps the processes leave: the process start times (psutil), TorchServe's
  log lines (its frontend stamps every line, the worker's relayed ones included) and the handler's own "load steps"
  figures. Also the peak RSS of the worker over the load and the first prediction.
- ``density``: ``serve`` in multi-model mode, ``models`` copies of one archive loaded one after another through
  ``POST /models`` (as SageMaker does), then unloaded: load time and worker RSS per model, and how much memory
  the unloads gave back.
- ``archive_sizes``: bytes on disk (not a timing).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import psutil

from bench.processes import processes
from entrypoints.torchserve import free_port
from runtimes.checkpoint import onnx_file, read_serving

ROOT = Path(__file__).resolve().parents[1]
#: TorchServe's console pattern (config/log4j2.xml): ``%d{ISO8601} [%-5p] %c - %m``
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3}) \[\w+\s*\] \S+ - (.*)$")
#: the first log line whose message holds each marker
MARKERS = {"loaded": " s (checks ", "load_steps": "load steps:", "ready": "worker ready",
           "first_batch": "first batch answered in"}
FIGURE = re.compile(r"(imports and model|imports|session|tokenizer|checks|in) (\d+\.\d+) s")
BODY = json.dumps({"text": "The team won the final match on Monday."}).encode()


def _post(url: str, body: bytes, timeout: float = 60) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class _Watcher(threading.Thread):
    """Start time and peak RSS of the java frontend and of every worker under ``root_pid``."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.running = root_pid, True
        self.created: dict[str, float] = {}
        self.peaks: dict[int, int] = {}
        self.now: dict[int, int] = {}
        #: the whole container: serve itself, the frontend and the workers (what a serverless memory size must hold)
        self.total_peak = 0

    def run(self) -> None:
        root = psutil.Process(self.root_pid)
        while self.running:
            try:
                found = processes(self.root_pid)
                own = root.memory_info().rss
            except psutil.Error:
                break
            current = {}
            for role, procs in found.items():
                for proc in procs:
                    # first seen, on this clock: psutil's create_time is only as exact as the boot time
                    # it adds (whole seconds), too coarse for steps of a fraction of a second
                    self.created.setdefault(role, time.time())
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    if role == "workers":
                        current[proc.pid] = rss
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
                    else:
                        current[-1] = rss  # the frontend
            self.now = current
            self.total_peak = max(self.total_peak, own + sum(current.values()))
            time.sleep(0.05)


def _serve(base: Path, port: int, log: Path, extra: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
           "PYTHONPATH": str(ROOT), **(extra or {})}
    return subprocess.Popen([sys.executable, "-m", "entrypoints", "serve"], cwd=ROOT, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


def log_events(log: Path) -> dict[str, tuple[float, str]]:
    """(epoch seconds, message) of the first TorchServe line, and of the first line holding each marker."""
    found: dict[str, tuple[float, str]] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        stamp = dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S,%f").timestamp()  # local time, as logged
        found.setdefault("frontend_log", (stamp, match.group(2)))
        for key, marker in MARKERS.items():
            if marker in match.group(2):
                found.setdefault(key, (stamp, match.group(2)))
    return found


def breakdown(t0: float, first: float, created: dict[str, float],
              events: dict[str, tuple[float, str]]) -> dict[str, Any]:
    """Seconds per step from launching ``serve`` to the first answer; None where a timestamp is missing."""
    figures = {k: float(v) for k, v in FIGURE.findall(events.get("load_steps", (0, ""))[1])}
    figures.update({k: float(v) for k, v in FIGURE.findall(events.get("loaded", (0, ""))[1])})
    first_batch = re.findall(r"(\d+\.\d+) s", events.get("first_batch", (0, ""))[1])
    if first_batch:
        figures["first_batch"] = float(first_batch[0])
    at = {name: stamp for name, (stamp, _) in events.items()}
    java, worker = created.get("java"), created.get("workers")
    load_start = at["loaded"] - figures["in"] if "loaded" in at and "in" in figures else None

    def span(a: float | None, b: float | None) -> float | None:
        return round(b - a, 3) if a is not None and b is not None else None

    return {
        "serve_entrypoint_s": span(t0, java),  # our Python: imports, checks, model view, TorchServe's launcher
        "jvm_start_s": span(java, at.get("frontend_log")),  # the JVM up to its first log line
        "frontend_to_worker_spawn_s": span(at.get("frontend_log"), worker),
        "worker_imports_s": span(worker, load_start),  # Python, TorchServe's modules, our handler module
        "checks_s": figures.get("checks"),
        "runtime_imports_s": figures.get("imports", figures.get("imports and model")),
        "session_s": figures.get("session"),
        "tokenizer_s": figures.get("tokenizer"),
        "first_batch_s": figures.get("first_batch"),  # the handler's first batch: tokenise, run, encode
        "ready_to_first_answer_s": span(at.get("ready"), first),  # the frontend marks READY, first request runs
        "total_s": span(t0, first),
    }


def _one_cold_start(model_dir: Path, work: Path) -> dict[str, Any]:
    base = work / "ml"
    base.mkdir(parents=True)
    os.symlink(model_dir, base / "model")
    port, log = free_port(), work / "serve.log"
    t0 = time.time()
    proc = _serve(base, port, log)
    watcher = _Watcher(proc.pid)
    watcher.start()
    try:
        while time.time() - t0 < 300:
            started = time.time()
            try:
                if _post(f"http://127.0.0.1:{port}/invocations", BODY) == 200:
                    first = time.time()
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise TimeoutError(f"no successful prediction within 300 s; see {log}")
        # the worker's lines reach the log through the frontend, which may relay them after the answer (an archive
        # built before the handler logged its first batch never writes it: then its step is None)
        deadline = time.monotonic() + 5
        while MARKERS["first_batch"] not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.running = False
        watcher.join()
        proc.terminate()
        proc.wait(timeout=60)
    steps = breakdown(t0, first, watcher.created, log_events(log))
    # the request that succeeded may have waited in TorchServe's queue for the worker: not a step of its own
    return {**steps, "successful_request_s": round(first - started, 3),
            "worker_peak_rss_mb": round(max(watcher.peaks.values(), default=0) / 2**20, 1),
            "serve_peak_rss_mb": round(watcher.total_peak / 2**20, 1)}


def cold_start(job: dict[str, Any]) -> dict[str, Any]:
    """``runs`` cold starts of one archive: each one's breakdown, their medians, and the worker's peak RSS."""
    runs = []
    for i in range(job.get("runs", 5)):
        work = Path(tempfile.mkdtemp(prefix=f"smtx-cold-{i}-"))
        runs.append(_one_cold_start(Path(job["model_dir"]), work))
        shutil.rmtree(work, ignore_errors=True)
    medians = {key: statistics.median(r[key] for r in runs if r[key] is not None) for key in runs[0]
               if any(r[key] is not None for r in runs)}
    return {"seconds": medians["total_s"], "p50": medians, "runs": runs,
            "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in runs),
            "serve_peak_rss_mb": max(r["serve_peak_rss_mb"] for r in runs)}


def _rss_mb(watcher: _Watcher) -> dict[str, Any]:
    time.sleep(0.3)  # one more sample after the change
    workers = {pid: rss for pid, rss in watcher.now.items() if pid != -1}
    return {"workers_mb": round(sum(workers.values()) / 2**20, 1),
            "frontend_mb": round(watcher.now.get(-1, 0) / 2**20, 1), "workers": len(workers)}


def density(job: dict[str, Any]) -> dict[str, Any]:
    """Load ``models`` copies of one archive into a multi-model ``serve``, one by one, then unload them all."""
    work = Path(tempfile.mkdtemp(prefix="smtx-density-"))
    base, n = work / "ml", job.get("models", 10)
    for i in range(n):  # hard links: under the models root (symlinks out of it are refused), no copy on disk
        shutil.copytree(job["model_dir"], base / "models" / f"m{i}" / "model", copy_function=os.link)
    port, log = free_port(), work / "serve.log"
    proc = _serve(base, port, log, {"SAGEMAKER_MULTI_MODEL": "true"})
    watcher = _Watcher(proc.pid)
    watcher.start()
    url = f"http://127.0.0.1:{port}"
    loads: list[dict[str, Any]] = []
    try:
        _wait(lambda: urllib.request.urlopen(f"{url}/ping", timeout=2).status == 200, 120, log)
        before = _rss_mb(watcher)
        for i in range(n):
            started = time.perf_counter()
            body = json.dumps({"model_name": f"m{i}", "url": str(base / "models" / f"m{i}" / "model")}).encode()
            status = _post(f"{url}/models", body, timeout=300)
            if status != 200:
                raise RuntimeError(f"loading model m{i} answered {status}; see {log}")
            _wait(lambda: _post(f"{url}/models/m{i}/invoke", BODY) == 200, 300, log)  # noqa: B023 -- called now
            loads.append({"load_s": round(time.perf_counter() - started, 3), **_rss_mb(watcher)})
        for i in range(n):
            unload = urllib.request.Request(f"{url}/models/m{i}", method="DELETE")
            urllib.request.urlopen(unload, timeout=120)
        _wait(lambda: not any(pid != -1 for pid in watcher.now), 120, log)
        after = _rss_mb(watcher)
    finally:
        watcher.running = False
        watcher.join()
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    loaded = loads[-1]
    per_model = [round(b["workers_mb"] - a["workers_mb"], 1) for a, b in zip([before, *loads], loads)]
    return {"models": n, "load_s_p50": statistics.median(x["load_s"] for x in loads),
            "rss_per_model_mb_p50": statistics.median(per_model), "rss_per_model_mb": per_model,
            "loads": loads, "before": before, "after_unload": after,
            "returned_mb": round(loaded["workers_mb"] + loaded["frontend_mb"] - after["workers_mb"]
                                 - after["frontend_mb"], 1)}


def _wait(ready: Callable[[], object], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"not ready within {timeout:.0f} s; see {log}")


def archive_sizes(stores: dict[str, Path]) -> dict[str, Any]:
    """Bytes of each variant's model.tar.gz and .mar, the model files it serves from (every gated path's: the
    ONNX graphs and OpenVINO's IR), and the ratio of the two."""
    out = {}
    for name, store in stores.items():
        if name == "checkpoint" or not (store / "model.tar.gz").is_file():
            continue
        extracted = store / "extracted"
        files = {p for p in model_files(extracted) if p.is_file()}
        tarball_mb = (store / "model.tar.gz").stat().st_size / 2**20
        models_mb = sum(p.stat().st_size for p in files) / 2**20 if files else None
        sizes = {"tarball_mb": tarball_mb, "mar_mb": sum(p.stat().st_size for p in store.glob("*.mar")) / 2**20,
                 "models_mb": models_mb, "tarball_over_models": tarball_mb / models_mb if models_mb else None,
                 "paths": {f.name: round(f.stat().st_size / 2**20, 3) for f in sorted(files)}}
        out[name] = {k: round(v, 3) if isinstance(v, float) else v for k, v in sizes.items()}
    return out


def model_files(extracted: Path) -> list[Path]:
    """The model files an ONNX archive serves from: each passed path's file (an IR's .bin too), else its graph."""
    serving = read_serving(extracted)
    names = {name for path in serving.passed_paths for name in path.files}
    graph = onnx_file(extracted, serving)
    return [extracted / n for n in sorted(names)] or ([graph] if graph else [])


JOBS = {"cold_start": cold_start, "density": density}
