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

This module starts the server and runs the soak; the requests, clients and judge are in ``bench/soak_traffic.py``,
the verdict and table in ``bench/soak_report.py``, the process sampling in ``bench/processes.py``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.processes import sample
from bench.soak_report import passed, table, verdict
from bench.soak_traffic import MODEL, REQUEST_TIMEOUT_S, Budget, Client, Tally, request_texts
from bench.stats import percentile

if TYPE_CHECKING:
    from entrypoints.torchserve import TorchServe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# -- the model -------------------------------------------------------------------------------------------------------
def _train_default_model(work: Path) -> Path:
    """The embedded MiniLM, a few steps on the classif examples, archived: a real-sized model in minutes."""
    from archive.build import build
    from training.config import TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters({"task_name": "classif", "max_steps": "20", "max_seq_length": "128",
                                               "learning_rate": "1e-4"})
    checkpoint = train(config, ROOT / "examples" / "data" / "classif", work / "checkpoint").output
    if checkpoint is None:
        raise RuntimeError("training wrote no model (only another rank of a distributed run does that)")
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


# -- one run ---------------------------------------------------------------------------------------------------------
def run_soak(seconds: float, clients: int, archive: Path | None = None, max_requests: int | None = None,
             workers: int = 1, log: Path | None = None) -> dict[str, Any]:
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


def _drive(server: TorchServe, port: int, seconds: float, clients: int, max_requests: int | None, max_text_chars: int,
           log: Path) -> dict[str, Any]:
    """Run the clients against ``server`` until the deadline or the budget, sampling its processes; the results."""
    tally, lock, texts = Tally(), threading.Lock(), request_texts()
    started = time.monotonic()
    deadline = started + seconds
    budget = Budget(max_requests)
    threads = [Client(i, port, deadline, budget, tally, lock, texts, max_text_chars) for i in range(clients)]
    for t in threads:
        t.start()
    first_at = started + min(60.0, seconds / 4)
    samples: list[dict[str, Any]] = []
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
        "latency_ms": {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                       "max": max(lat) if lat else None},
        "samples": samples, "verdict": verdict(first, last, tally), "problems": tally.examples,
        "request_text_in_log": _text_logged(log, texts),
    }


def _text_logged(log: Path, texts: list[str]) -> bool:
    content = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return any(t[:60] in content for t in texts[:50])


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
