"""Our whole stack under load: TorchServe with our archive, fed the way Batch Transform and clients feed it."""
from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.processes import processes
from bench.stats import latency_summary
from bench.texts import corpus
from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port

ROOT = Path(__file__).resolve().parents[1]


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return resp.status, resp.read()


class _RssSampler(threading.Thread):
    """Peak RSS of each TorchServe worker (the Python processes under the frontend), sampled while we load it."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.running = root_pid, True
        self.peaks: dict[int, int] = {}  # worker pid -> its largest resident set, bytes

    def run(self) -> None:
        while self.running:
            for worker in processes(self.root_pid)["workers"]:
                try:
                    self.peaks[worker.pid] = max(self.peaks.get(worker.pid, 0), worker.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.2)


def _payloads(texts: list[str], payload_mb: float) -> list[bytes]:
    limit, size = payload_mb * 2**20, 0
    out: list[bytes] = []
    current: list[bytes] = []
    for text in texts:
        line = (json.dumps({"text": text}) + "\n").encode()
        if current and size + len(line) > limit:
            out.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    return out + ([b"".join(current)] if current else [])


def throughput(job: dict[str, Any]) -> dict[str, Any]:
    """Records/s through /predictions with jsonlines payloads, plus /invocations latency, on one server."""
    store, name = Path(job["store"]), job["name"]
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="smtx-bench-"))
    config = TorchServeConfig(model_store=store, inference_address=f"http://127.0.0.1:{port}",
                              management_address=f"http://127.0.0.1:{free_port()}",
                              metrics_address=f"http://127.0.0.1:{free_port()}", load_models=[f"{name}={name}.mar"],
                              workers=job.get("workers", 1), max_request_bytes=64 * 2**20,
                              max_response_bytes=64 * 2**20)
    env = {**os.environ, "SMTX_THREADS_PER_WORKER": str(job.get("threads", 2)),
           "SAGEMAKER_MODEL_SERVER_WORKERS": str(job.get("workers", 1)), "SMTX_MAX_RECORDS": "1000000"}
    server = TorchServe(config, work, env=env, stdout=open(work / "ts.log", "wb"))
    try:
        server.wait_ready(name, timeout=300)
        sampler = _RssSampler(server.process.pid)
        sampler.start()
        url = f"{config.inference_address}/predictions/{name}"
        texts = corpus(job["n"], seed=job.get("seed", 0))
        _post(url, _payloads(texts[:64], 1)[0], "application/jsonlines")  # warm-up
        payloads = _payloads(texts, job.get("payload_mb", 2))
        started = time.perf_counter()
        for body in payloads:
            status, out = _post(url, body, "application/jsonlines")
            assert status == 200 and out.count(b"\n") == body.count(b"\n"), "one answer line per record"
        seconds = time.perf_counter() - started
        result = {"records_per_s": len(texts) / seconds, "seconds": seconds, "payloads": len(payloads),
                  "payload_mb": job.get("payload_mb", 2)}
        result["latency_sequential"] = _latency(url, job.get("requests", 300), clients=1)
        result["ping"] = _ping(f"{config.inference_address}/ping", job.get("requests", 300))
        result["latency_8_clients"] = _latency(url, job.get("requests", 300), clients=8)
        sampler.running = False
        sampler.join()
        result["worker_peak_rss_mb"] = max(sampler.peaks.values(), default=0) / 2**20
        return result
    finally:
        server.stop()


WARM_UP_REQUESTS = 500


class _Client:
    """One kept-alive HTTP connection, as SageMaker's front end and any production client hold one."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"{url!r} names no host")
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def ms(self, method: str, body: bytes | None = None) -> float:
        started = time.perf_counter()
        self.conn.request(method, self.path, body, {"Content-Type": "application/json"} if body else {})
        resp = self.conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        return (time.perf_counter() - started) * 1000


def _latency(url: str, requests: int, clients: int) -> dict[str, Any]:
    """p50/p95/p99 of one short record, after a warm-up (the JVM compiles the frontend's hot paths over the first
    few hundred requests: a long-running endpoint is measured, not a cold one)."""
    body = json.dumps({"text": "The team won the final match on Monday."}).encode()
    samples: list[float] = []
    lock = threading.Lock()
    warm = _Client(url)
    for _ in range(WARM_UP_REQUESTS):
        warm.ms("POST", body)

    def client(count: int) -> None:
        own = _Client(url)
        for _ in range(count):
            elapsed = own.ms("POST", body)
            with lock:
                samples.append(elapsed)

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latency_summary(samples)


def _ping(url: str, requests: int) -> dict[str, Any]:
    """TorchServe's own round trip, no worker involved: the floor under every /invocations latency."""
    client = _Client(url)
    for _ in range(WARM_UP_REQUESTS):
        client.ms("GET")
    return latency_summary([client.ms("GET") for _ in range(requests)])


JOBS = {"served": throughput}  # cold start and density: bench/cold_start.py
