"""``python -m bench.soak --minutes 5 --clients 16``: a long run of mixed traffic against a server started here.

Valid and invalid requests, JSON and jsonlines, from ``--clients`` threads with keep-alive connections, for a
bounded time (and at most ``--max-requests``). It records every answer and checks it: a valid request must get
200 with one output per record, an invalid one its own 4xx. Worker RSS and the open file descriptors of
TorchServe's java frontend and its Python workers are sampled at minute 1 (or a quarter of a shorter run) and at
the end. Results go to ``bench/results/soak-<date>.json`` and a table is printed. Exit status 0 only when no
valid request failed, RSS grew by less than 10 % and no descriptor leaked.

The server is TorchServe on loopback ports (``entrypoints.torchserve.TorchServe``) serving an extracted
``model.tar.gz``: ``--archive`` (a directory or a .tar.gz), or else the embedded MiniLM trained for a few steps
on ``examples/data/classif`` and archived with ``make archive``'s code.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODEL = "model"
RSS_GROWTH_LIMIT = 0.10
REQUEST_TIMEOUT_S = 60.0
JSON, JSONL = "application/json", "application/jsonlines"


# -- traffic ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """One request to send and what it must get."""

    kind: str
    body: bytes
    headers: dict[str, str]
    status: int
    records: int = 0  # outputs a 200 must hold

    @property
    def valid(self) -> bool:
        return self.status == 200


def _texts() -> list[str]:
    from bench.texts import corpus

    return corpus(400, seed=7)


def plan(rng: random.Random, texts: list[str], max_text_chars: int) -> Planned:
    """A request drawn from the mix: 80 % valid (JSON or jsonlines, 1-8 records), 20 % invalid."""
    roll = rng.random()
    picked = [rng.choice(texts) for _ in range(rng.randint(1, 8))]
    if roll < 0.4:
        return Planned("json", json.dumps({"data": [{"text": t} for t in picked]}).encode(), {"Content-Type": JSON},
                       200, len(picked))
    if roll < 0.8:
        body = "".join(json.dumps({"text": t}) + "\n" for t in picked).encode()
        return Planned("jsonlines", body, {"Content-Type": JSONL, "Accept": rng.choice([JSONL, JSON, "*/*"])},
                       200, len(picked))
    invalid = [
        Planned("empty text", b'{"text": ""}', {"Content-Type": JSON}, 400),
        Planned("not json", b'{"text": "unterminated', {"Content-Type": JSON}, 400),
        Planned("text missing", b'{"data": [{"txt": "a"}]}', {"Content-Type": JSON}, 400),
        Planned("blank line", b'{"text": "a"}\n\n{"text": "b"}\n', {"Content-Type": JSONL}, 400),
        Planned("csv", b"a,b\n", {"Content-Type": "text/csv"}, 415),
        Planned("accept png", b'{"text": "a"}', {"Content-Type": JSON, "Accept": "image/png"}, 406),
        Planned("text too long", json.dumps({"text": "a" * (max_text_chars + 1)}).encode(), {"Content-Type": JSON},
                413),
    ]
    return rng.choice(invalid)


@dataclass
class Tally:
    """What the clients saw (shared; updated under a lock)."""

    sent: int = 0
    valid: int = 0
    invalid: int = 0
    failed_valid: int = 0
    unexpected_invalid: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def _outputs(body: bytes, content_type: str) -> int:
    if content_type.startswith(JSONL):
        return len(body.decode("utf-8").splitlines())
    return len(json.loads(body)["predictions"])


def _judge(request: Planned, status: int, content_type: str, body: bytes) -> str | None:
    """None when the answer is right, else why not."""
    if status != request.status:
        return f"{request.kind}: status {status}, expected {request.status}: {body[:120]!r}"
    if request.valid:
        try:
            got = _outputs(body, content_type)
        except (ValueError, KeyError) as exc:
            return f"{request.kind}: unreadable answer ({exc})"
        if got != request.records:
            return f"{request.kind}: {got} outputs for {request.records} records"
    return None


class Client(threading.Thread):
    """One keep-alive connection sending planned requests until the deadline or the shared request budget."""

    def __init__(self, index: int, port: int, deadline: float, budget: "Budget", tally: Tally, lock: threading.Lock,
                 texts: list[str], max_text_chars: int) -> None:
        super().__init__(daemon=True, name=f"soak-client-{index}")
        self.rng = random.Random(index)
        self.port, self.deadline, self.budget, self.tally, self.lock = port, deadline, budget, tally, lock
        self.texts, self.max_text_chars = texts, max_text_chars
        self.conn: http.client.HTTPConnection | None = None

    def _send(self, request: Planned) -> tuple[int, str, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed is reopened once
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                self.conn.request("POST", f"/predictions/{MODEL}", body=request.body, headers=request.headers)
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, resp.getheader("Content-Type", ""), body
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        while time.monotonic() < self.deadline and self.budget.take():
            request = plan(self.rng, self.texts, self.max_text_chars)
            started = time.perf_counter()
            try:
                status, ctype, body = self._send(request)
                problem = _judge(request, status, ctype, body)
            except OSError as exc:
                problem = f"{request.kind}: {type(exc).__name__}: {exc}"
            self._record(request, problem, (time.perf_counter() - started) * 1000)
        if self.conn is not None:
            self.conn.close()

    def _record(self, request: Planned, problem: str | None, ms: float) -> None:
        with self.lock:
            t = self.tally
            t.sent += 1
            t.by_kind[request.kind] = t.by_kind.get(request.kind, 0) + 1
            if request.valid:
                t.valid += 1
                t.latencies_ms.append(ms)
                t.failed_valid += problem is not None
            else:
                t.invalid += 1
                t.unexpected_invalid += problem is not None
            if problem and len(t.examples) < 20:
                t.examples.append(problem)


class Budget:
    """At most ``limit`` requests in all (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.left, self.lock = limit, threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left is None:
                return True
            if self.left <= 0:
                return False
            self.left -= 1
            return True


# -- the server and its processes ------------------------------------------------------------------------------------
def _train_default_model(work: Path) -> Path:
    """The embedded MiniLM, a few steps on the classif examples, archived: a real-sized model in minutes."""
    from archive.build import build
    from training.config import TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters({"task_name": "classif", "max_steps": "20", "max_seq_length": "128",
                                               "learning_rate": "1e-4"})
    checkpoint = train(config, ROOT / "examples" / "data" / "classif", work / "checkpoint").output
    return build(checkpoint, work / "store", name=MODEL).tarball


def prepare_model(archive: Path | None, store: Path) -> Path:
    """``store/model``: the extracted archive TorchServe will load."""
    target = store / MODEL
    source = archive if archive is not None else _train_default_model(store.parent / "train")
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        with tarfile.open(source) as tf:
            tf.extractall(target, filter="data")
    return target


def processes(root_pid: int) -> dict[str, list[psutil.Process]]:
    """TorchServe's java frontend and its Python model workers, under ``root_pid``."""
    found: dict[str, list[psutil.Process]] = {"java": [], "workers": []}
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "model_service_worker" in cmd:
            found["workers"].append(proc)
        elif proc.name() == "java" or "org.pytorch.serve.ModelServer" in cmd:
            found["java"].append(proc)
    return found


def sample(root_pid: int, elapsed_s: float) -> dict:
    """RSS and open descriptors of each process right now."""
    out: dict = {"t_s": round(elapsed_s, 1), "worker_rss_mb": {}, "worker_fds": {}, "java_fds": None,
                 "java_rss_mb": None}
    found = processes(root_pid)
    for proc in found["workers"]:
        try:
            out["worker_rss_mb"][str(proc.pid)] = round(proc.memory_info().rss / 2**20, 1)
            out["worker_fds"][str(proc.pid)] = proc.num_fds()
        except psutil.Error:
            pass
    if found["java"]:
        java = found["java"][0]
        try:
            out["java_fds"], out["java_rss_mb"] = java.num_fds(), round(java.memory_info().rss / 2**20, 1)
        except psutil.Error:
            pass
    return out


# -- one run ---------------------------------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _verdict(first: dict, last: dict, tally: Tally) -> dict:
    common = [pid for pid in first["worker_rss_mb"] if pid in last["worker_rss_mb"]]
    growth = [(last["worker_rss_mb"][p] - first["worker_rss_mb"][p]) / first["worker_rss_mb"][p] for p in common]
    fd_growth = {"java": (last["java_fds"] or 0) - (first["java_fds"] or 0),
                 "workers": sum(last["worker_fds"].get(p, 0) - first["worker_fds"].get(p, 0) for p in common)}
    return {
        "zero_failed_valid": tally.failed_valid == 0,
        "worker_rss_growth": max(growth) if growth else None,
        "rss_ok": bool(growth) and max(growth) < RSS_GROWTH_LIMIT,
        "fd_growth": fd_growth,
        # java holds one descriptor per client connection: a reconnect between the samples may move it by a few
        "fds_ok": fd_growth["workers"] <= 0 and fd_growth["java"] <= 4,
        "workers_restarted": sorted(set(first["worker_rss_mb"]) ^ set(last["worker_rss_mb"])),
    }


def run_soak(seconds: float, clients: int, archive: Path | None = None, max_requests: int | None = None,
             workers: int = 1, log: Path | None = None) -> dict:
    """Start a server, drive it for ``seconds``, stop it; the results (also what the JSON file holds)."""
    from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port
    from handlers.service import Settings

    if not 1 <= clients <= 64 or not 1 <= seconds <= 3600:
        raise ValueError(f"clients must be 1-64 and seconds 1-3600, got {clients} and {seconds}")
    work = Path(tempfile.mkdtemp(prefix="smtx-soak-"))
    store = work / "store"
    store.mkdir()
    prepare_model(archive, store)
    port = free_port()
    config = TorchServeConfig(model_store=store, inference_address=f"http://127.0.0.1:{port}",
                              management_address=f"http://127.0.0.1:{free_port()}",
                              metrics_address=f"http://127.0.0.1:{free_port()}", load_models=[f"{MODEL}={MODEL}"],
                              workers=workers, job_queue_size=max(100, 8 * clients))
    log = log or work / "torchserve.log"
    server = TorchServe(config, work / "ts", stdout=open(log, "wb"))
    try:
        server.wait_ready(MODEL, timeout=600)
        return _drive(server, port, seconds, clients, max_requests, Settings().max_text_chars, log)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _drive(server, port: int, seconds: float, clients: int, max_requests: int | None, max_text_chars: int,
           log: Path) -> dict:
    tally, lock, texts = Tally(), threading.Lock(), _texts()
    started = time.monotonic()
    deadline = started + seconds
    budget = Budget(max_requests)
    threads = [Client(i, port, deadline, budget, tally, lock, texts, max_text_chars) for i in range(clients)]
    for t in threads:
        t.start()
    first_at = started + min(60.0, seconds / 4)
    samples = []
    while any(t.is_alive() for t in threads):
        now = time.monotonic()
        if not samples and now >= first_at or samples and now - started >= samples[-1]["t_s"] + 30:
            samples.append(sample(server.process.pid, now - started))
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S * 2 + 5)
    elapsed = time.monotonic() - started
    samples.append(sample(server.process.pid, elapsed))
    first, last = samples[0], samples[-1]
    lat = tally.latencies_ms
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "seconds": round(elapsed, 1), "clients": clients,
        "requests": tally.sent, "valid": tally.valid, "invalid": tally.invalid, "failed_valid": tally.failed_valid,
        "unexpected_invalid": tally.unexpected_invalid, "by_kind": tally.by_kind,
        "requests_per_s": round(tally.sent / elapsed, 1) if elapsed else None,
        "latency_ms": {"p50": _percentile(lat, 50), "p90": _percentile(lat, 90), "p99": _percentile(lat, 99),
                       "max": max(lat) if lat else None},
        "samples": samples, "verdict": _verdict(first, last, tally), "problems": tally.examples,
        "request_text_in_log": _text_logged(log, texts),
    }


def _text_logged(log: Path, texts: list[str]) -> bool:
    content = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return any(t[:60] in content for t in texts[:50])


# -- report ----------------------------------------------------------------------------------------------------------
def table(result: dict) -> str:
    first, last, verdict = result["samples"][0], result["samples"][-1], result["verdict"]
    lat = result["latency_ms"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    rss = verdict["worker_rss_growth"]
    rows = [
        ("duration / clients", f"{result['seconds']} s / {result['clients']}"),
        ("requests (valid / invalid)", f"{result['requests']} ({result['valid']} / {result['invalid']}), "
                                       f"{result['requests_per_s']} req/s"),
        ("failed valid requests", str(result["failed_valid"])),
        ("invalid requests answered wrongly", str(result["unexpected_invalid"])),
        ("latency p50 / p90 / p99 / max", " / ".join(ms(lat[k]) for k in ("p50", "p90", "p99", "max"))),
        (f"worker RSS at {first['t_s']} s -> end", f"{first['worker_rss_mb']} -> {last['worker_rss_mb']} MB "
                                                   f"({'-' if rss is None else f'{rss:+.1%}'})"),
        ("java fds", f"{first['java_fds']} -> {last['java_fds']}"),
        ("worker fds", f"{first['worker_fds']} -> {last['worker_fds']}"),
        ("workers restarted", str(verdict["workers_restarted"] or "none")),
        ("request text in the log", str(result["request_text_in_log"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def passed(result: dict) -> bool:
    v = result["verdict"]
    return v["zero_failed_valid"] and v["rss_ok"] and v["fds_ok"] and not result["request_text_in_log"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, help="instead of --minutes (short runs)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--archive", type=Path, help="an extracted model.tar.gz directory or the .tar.gz itself")
    parser.add_argument("--max-requests", type=int, help="stop after this many requests in all")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds else args.minutes * 60
    result = run_soak(seconds, args.clients, args.archive, args.max_requests, args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"soak-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({**result, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2),
                    encoding="utf-8")
    print(table(result))
    print(f"wrote {path}")
    for problem in result["problems"][:10]:
        print(f"  problem: {problem}")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
