"""Asynchronous inference on the serving side: a 200 MB jsonlines request through `serve`, a real TorchServe.

SageMaker's async endpoints take payloads up to 1 GB and an hour of processing; the launcher sets
SMTX_ASYNC_INFERENCE=true, a large SAGEMAKER_MAX_PAYLOAD_IN_MB and a long timeout. The answer has one line per
input line, a bad line answers an error in place, and the worker holds the answer once (encoded as it goes).
"""
from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers.serving_fixtures import Serve, train_and_archive

pytestmark = pytest.mark.slow

PAYLOAD_MB = 200
TEXT = "the striker scored twice and the crowd went wild after the final whistle blew in the stadium " * 20


@pytest.fixture(scope="module")
def classif(tmp_path_factory, tiny_model_dir, small_data):
    root = tmp_path_factory.mktemp("async")
    return train_and_archive("classif", "bert", "classif", small_data("classif"), False, tiny_model_dir("bert"), root)


def _payload(path: Path, megabytes: int) -> tuple[int, set[int]]:
    """A jsonlines file of about ``megabytes`` MB; returns its line count and the indices of its bad lines."""
    line = json.dumps({"text": TEXT}).encode() + b"\n"
    count = megabytes * 1024 * 1024 // len(line)
    bad = {7, count // 2, count - 1}
    with path.open("wb") as out:
        for i in range(count):
            out.write(b'{"text": 5}\n' if i in bad else line)
    return count, bad


class PeakRss:
    """Samples the resident memory of a process tree (every 50 ms) while a request runs."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self.peaks: dict[str, int] = {}
        self._sample()
        self.before = dict(self.peaks)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                name = "frontend (java)" if "java" in proc.name() else \
                    "worker" if "model_service_worker" in " ".join(proc.cmdline()) else None
                if name:
                    self.peaks[name] = max(self.peaks.get(name, 0), proc.memory_info().rss)
            except psutil.Error:
                pass

    def _run(self) -> None:
        while self.running:
            self._sample()
            time.sleep(0.05)

    def stop(self) -> dict[str, int]:
        self.running = False
        self.thread.join(timeout=5)
        return self.peaks


def test_a_200_mb_jsonlines_request_answers_one_line_per_input_line(tmp_path, classif, record_property):
    (tmp_path / "ml").mkdir()
    shutil.copytree(classif.extracted, tmp_path / "ml" / "model")
    source = tmp_path / "big.jsonl"
    count, bad = _payload(source, PAYLOAD_MB)
    server = Serve(tmp_path / "ml", SMTX_ASYNC_INFERENCE="true", SAGEMAKER_MAX_PAYLOAD_IN_MB=str(PAYLOAD_MB + 50),
                   SAGEMAKER_MODEL_SERVER_TIMEOUT="1800")
    try:
        server.wait_ping()
        rss = PeakRss(server.proc.pid)
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1800)
        with source.open("rb") as body:
            conn.request("POST", "/invocations", body=body, headers={
                "Content-Type": "application/jsonlines", "Content-Length": str(source.stat().st_size)})
            response = conn.getresponse()
            answer = response.read()
        seconds = time.monotonic() - started
        peaks, before = rss.stop(), rss.before
        assert response.status == 200, answer[:500]
        lines = answer.split(b"\n")
        assert lines[-1] == b"" and len(lines) - 1 == count  # outside Batch Transform the last line is terminated
        for i in sorted(bad):
            assert json.loads(lines[i]) == {"error": f"record {i}: text must be a string, got int", "record": i}
        assert all(b'"pred"' in lines[i] for i in (0, 1, count // 3, count - 2))
    finally:
        server.stop()
    figures = {name: {"idle": round(before.get(name, 0) / 2**20), "peak": round(peak / 2**20)}
               for name, peak in peaks.items()}
    record_property("async_200mb_rss_mb", figures)
    print(f"\n{source.stat().st_size / 1e6:.0f} MB, {count} records in {seconds:.0f} s; RSS MB: {figures}")
    # the request passes through the worker as its bytes, its records and its encoded answer: about three times
    # the payload. A copy per stage (a decoded string, its lines, the answers as dicts) would be far more
    grown = figures["worker"]["peak"] - figures["worker"]["idle"]
    assert grown < 4 * PAYLOAD_MB, figures
