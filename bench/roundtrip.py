"""``python -m bench.roundtrip STORE NAME``: TorchServe settings against the /predictions round trip.

One short record over a kept-alive connection, 500 warm-up requests then 1,500 timed, for each variant in turn on
a fresh server (defaults, ``async_logging``, access and model logs at WARN, both, defaults again), and the direct
call of the same archive's service in this process: the p50 gap is the round trip's overhead. A benchmark, not a
test: run it on a quiet machine. ``AB_THREADS`` sets the worker's threads (default 1).
"""
from __future__ import annotations

import http.client
import importlib
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import entrypoints.torchserve as ts
from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port

BODY = json.dumps({"text": "The team won the final match on Monday."}).encode()
QUIET_LOG = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration>
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT"><PatternLayout pattern="%d{ISO8601} [%-5p] %c - %m%n"/></Console>
  </Appenders>
  <Loggers>
    <Logger name="ACCESS_LOG" level="warn" additivity="false"><AppenderRef ref="STDOUT"/></Logger>
    <Logger name="MODEL_LOG" level="warn" additivity="false"><AppenderRef ref="STDOUT"/></Logger>
    <Logger name="MODEL_METRICS" level="off"/><Logger name="TS_METRICS" level="off"/>
    <Logger name="io.netty" level="error"/><Logger name="org.apache" level="off"/>
    <Logger name="org.pytorch.serve" level="warn" additivity="false"><AppenderRef ref="STDOUT"/></Logger>
    <Root level="warn"><AppenderRef ref="STDOUT"/></Root>
  </Loggers>
</Configuration>
"""


class Variant(TorchServeConfig):
    """TorchServeConfig with a few more config.properties lines."""

    extra: dict[str, str] = {}

    def properties(self) -> str:
        return super().properties() + "".join(f"{k}={v}\n" for k, v in self.extra.items())


def measure(store: Path, name: str, extra: dict[str, str], quiet_log: bool, n: int = 1500, warm: int = 500
            ) -> dict[str, float]:
    """p50/p90 of one short record through a fresh server with these settings, and its /ping p50."""
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="smtx-ab-"))
    config = Variant(model_store=store, inference_address=f"http://127.0.0.1:{port}",
                     management_address=f"http://127.0.0.1:{free_port()}", load_models=[f"{name}={name}.mar"])
    config.extra = extra
    if quiet_log:
        (work / "cfg").mkdir(parents=True)
        (work / "cfg" / "log4j2.xml").write_text(QUIET_LOG)
        ts.config_dir = lambda: work / "cfg"
    env = {**os.environ, "SMTX_THREADS_PER_WORKER": os.environ.get("AB_THREADS", "1")}
    server = TorchServe(config, work, env=env, stdout=open(work / "ts.log", "wb"))
    try:
        server.wait_ready(name, timeout=300)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times = []
        for i in range(warm + n):
            t = time.perf_counter()
            conn.request("POST", f"/predictions/{name}", BODY, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            if i >= warm:
                times.append((time.perf_counter() - t) * 1000)
        ping = []
        for _ in range(1000):
            t = time.perf_counter()
            conn.request("GET", "/ping")
            conn.getresponse().read()
            ping.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": round(statistics.median(times), 3), "p90_ms": round(sorted(times)[int(0.9 * n)], 3),
                "ping_p50_ms": round(statistics.median(ping[200:]), 3)}
    finally:
        server.stop()
        importlib.reload(ts)
        shutil.rmtree(work, ignore_errors=True)


def direct(store: Path, name: str, n: int = 1500, warm: int = 300) -> float:
    """p50 of the same request through the archive's service called in this process (no server)."""
    from handlers.service import InferenceService, Request, Settings

    model = Path(tempfile.mkdtemp(prefix="smtx-ab-direct-"))
    try:
        with tarfile.open(store / "model.tar.gz") as tf:
            tf.extractall(model, filter="data")
        service = InferenceService(model, Settings(threads=int(os.environ.get("AB_THREADS", "1"))))
        request = [Request(BODY, {"content-type": "application/json"})]
        times = []
        for i in range(warm + n):
            started = time.perf_counter()
            service.handle(request)
            if i >= warm:
                times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 3)
    finally:
        shutil.rmtree(model, ignore_errors=True)


def main(argv: list[str]) -> int:
    store, name = Path(argv[0]), argv[1]
    variants = [("default", {}, False), ("async_logging", {"async_logging": "true"}, False),
                ("quiet logs", {}, True), ("async + quiet", {"async_logging": "true"}, True),
                ("default again", {}, False)]
    for label, extra, quiet in variants:
        print(label, measure(store, name, extra, quiet), flush=True)
    print("direct call p50 ms", direct(store, name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
