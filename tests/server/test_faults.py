"""Faults, each bounded in time: a worker killed mid-traffic, broken models in multi-model mode, a disk that fills
up during training, a 20,000-line Batch Transform with bad lines, a 30-second soak, two servers on one host.

Servers here never overlap (the single-model server lives in one test class and stops before the next one
starts): the machine has two CPU cores, and a fault test must not be disturbed by its neighbour's load.
Figures (recovery time, load-failure times) are printed (``pytest -s``) and attached with ``record_property``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.serving_fixtures import http, post_json, start_server, train_and_archive, wait_invocable

pytestmark = pytest.mark.slow

RESPONSE_TIMEOUT_S = 30  # the server's response timeout here: every request must be answered within it
RESPONSE_LIMIT_MB = 16  # SAGEMAKER_MAX_PAYLOAD_IN_MB of the single-model server: its request and response limit
DRAIN_TIMEOUT_S = 8  # SMTX_DRAIN_TIMEOUT of the single-model server


@pytest.fixture(scope="module")
def archives(tmp_path_factory, tiny_model_dir, small_data):
    root = tmp_path_factory.mktemp("faults")
    return {name: train_and_archive(name, "bert", task, small_data(task), False, tiny_model_dir("bert"), root)
            for name, task in (("ner", "ner"), ("classif", "classif"))}


def _serve(base: Path, **env: str):
    from tests.helpers.serving_fixtures import Serve

    return Serve(base, **env)


def _describe(url: str, name: str = "model") -> list[dict]:
    status, _, body = http("GET", f"{url}/models/{name}", timeout=5)
    return json.loads(body)[0].get("workers", []) if status == 200 else []


# -- the single-model server: Batch Transform, then a worker killed under traffic -------------------------------------
#: long words of the tiny model's vocabulary: one token each, ~10 bytes each
VOCAB = ["engineers", "partnership", "technology", "industries", "logistics", "expected", "according", "yesterday",
         "struggled", "terrible"]


def _words(i: int) -> int:
    """8-12 words (~120 bytes a line): a 1 MB payload holds ~8,500 records, under the 10,000-record limit."""
    return 8 + i % 5


def _transform_input(path: Path, n: int, bad_every: int, words=_words) -> set[int]:
    """``n`` jsonlines records, line i holding ``words(i)`` words; every ``bad_every``-th line is bad (5 kinds)."""
    bad_kinds = ['{"text": ""}', '{"txt": "a b"}', "not json at all", '{"text": 42}', '["a", "list"]']
    bad, out = set(), []
    for i in range(n):
        if i % bad_every == bad_every // 2:
            bad.add(i)
            out.append(bad_kinds[len(bad) % len(bad_kinds)])
        else:
            out.append(json.dumps({"text": " ".join(VOCAB[(i + j) % len(VOCAB)] for j in range(words(i)))}))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return bad


class TestSingleModelServer:
    @pytest.fixture(scope="class")
    def server(self, archives, tmp_path_factory):
        base = tmp_path_factory.mktemp("single") / "ml"
        shutil.copytree(archives["ner"].extracted, base / "model")
        # NER answers are ~10x the size of their requests: a 16 MB response limit for 1 MB payloads (see below)
        served = _serve(base, SAGEMAKER_BATCH="true", SAGEMAKER_MODEL_SERVER_TIMEOUT=str(RESPONSE_TIMEOUT_S),
                        SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="2", SAGEMAKER_MAX_PAYLOAD_IN_MB=str(RESPONSE_LIMIT_MB),
                        SMTX_DRAIN_TIMEOUT=str(DRAIN_TIMEOUT_S))
        try:
            served.wait_ping()
            yield served
        finally:
            served.stop()

    def test_batch_transform_of_20000_lines_with_1_percent_bad(self, server, tmp_path, record_property):
        from launcher.jobs.local_transform import run_local_transform

        source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        bad = _transform_input(source, 20_000, 100)
        summary = run_local_transform(source, output, url=server.url, max_payload_mb=1, concurrency=2,
                                      timeout_s=RESPONSE_TIMEOUT_S * 2)
        record_property("transform_seconds", round(summary.seconds, 1))
        print(f"\n20,000-line transform: {summary.requests} requests, {summary.seconds:.1f} s")
        assert summary.requests > 1 and not summary.failed, summary.describe()
        answers = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert len(answers) == 20_000 and len(bad) == 200
        for i, answer in enumerate(answers):  # in order: each line's word count is its own
            if i in bad:
                assert "error" in answer and "pred" not in answer, (i, answer)
            else:
                assert len(answer["pred"]) == _words(i), (i, answer)

    def test_batch_transform_of_short_lines_at_the_default_payload_size(self, server, tmp_path):
        from launcher.jobs.local_transform import run_local_transform

        source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        bad = _transform_input(source, 20_000, 100, words=lambda i: 1 + i % 3)
        summary = run_local_transform(source, output, url=server.url, max_payload_mb=6, concurrency=2,
                                      timeout_s=RESPONSE_TIMEOUT_S * 2)
        answers = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert len(answers) == 20_000
        assert not summary.failed, summary.describe()
        assert all("pred" in a for i, a in enumerate(answers) if i not in bad)

    def test_an_answer_over_the_response_limit_fails_alone_and_the_worker_survives(self, server):
        url = server.url
        [before] = _describe(url)
        # all_scores: every word answers every label's score, so the answer is ~100x the request
        record = (json.dumps({"text": " ".join(["the"] * 5_000), "all_scores": True}) + "\n").encode()
        status, _, probe = http("POST", url + "/invocations", record, {"Content-Type": "application/jsonlines"})
        assert status == 200
        records = 2 * RESPONSE_LIMIT_MB * 2**20 // len(probe) + 1  # an answer of twice the response limit
        body = record * records
        assert len(body) < RESPONSE_LIMIT_MB * 2**20 and records <= 10_000
        try:
            status, _, answer = http("POST", url + "/invocations", body, {"Content-Type": "application/jsonlines"},
                                     timeout=RESPONSE_TIMEOUT_S * 3)
            assert 400 <= status < 600 and b"Worker died" not in answer, (status, answer[:200])
            assert [w["pid"] for w in _describe(url)] == [before["pid"]], "the worker was killed"
        finally:
            _wait_ready(url)

    def test_a_worker_killed_mid_traffic_answers_in_flight_requests_and_comes_back(self, server, record_property):
        url = server.url
        [worker] = _describe(url)
        old_pid = worker["pid"]
        text = " ".join(["Alice Martin flew to Paris and met Bob Chen ."] * 30)
        body = json.dumps({"data": [{"text": text}] * 12}).encode()
        results: list[tuple[float, float, int | str]] = []
        lock, stop = threading.Lock(), threading.Event()

        def client() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = http("POST", url + "/invocations", body, {"Content-Type": "application/json"},
                                  timeout=RESPONSE_TIMEOUT_S + 15)[0]
                except OSError as exc:
                    status = f"{type(exc).__name__}: {exc}"
                with lock:
                    results.append((started, time.monotonic(), status))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        marker = _busy_dir(server) / str(old_pid)  # exists while the worker runs a batch
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the worker never started a batch"
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)  # inside a batch: its requests are in flight
        ready_at = back_at = None
        deadline = killed_at + 120
        while time.monotonic() < deadline and back_at is None:
            workers = _describe(url)
            if ready_at is None and any(w["pid"] != old_pid and w["status"] == "READY" for w in workers):
                ready_at = time.monotonic()
            with lock:
                back_at = min((end for start, end, s in results if start > killed_at and s == 200), default=None)
            time.sleep(0.2)
        time.sleep(2.0)  # a little more traffic on the new worker
        stop.set()
        for t in threads:
            t.join(timeout=RESPONSE_TIMEOUT_S + 20)
        assert not any(t.is_alive() for t in threads), "a request hung past the response timeout"
        assert back_at is not None, "no request succeeded within 120 s of the kill"
        in_flight = [s for start, end, s in results if start < killed_at < end]
        after = [s for start, _, s in results if start > back_at]
        recovery = back_at - killed_at
        record_property("worker_recovery_s", round(recovery, 2))
        print(f"\nworker SIGKILL: {len(results)} requests, in flight at the kill: {in_flight}; new worker READY after "
              f"{(ready_at or back_at) - killed_at:.1f} s, first success after {recovery:.1f} s")
        assert all(isinstance(s, int) for _, _, s in results), [s for _, _, s in results if not isinstance(s, int)]
        assert all(s == 200 or 500 <= s < 600 for _, _, s in results), sorted({s for _, _, s in results})
        assert all(end - start < RESPONSE_TIMEOUT_S + 5 for start, end, _ in results)
        assert in_flight, "the kill must have hit requests in flight"
        assert after and all(s == 200 for s in after), after
        assert all(w["pid"] != old_pid for w in _describe(url))

    def test_sigterm_after_a_worker_crash_stops_an_idle_server_promptly(self, server):
        import psutil

        busy = _busy_dir(server)
        if not any(not psutil.pid_exists(int(p.name)) for p in busy.iterdir()):  # run alone: crash one now
            [worker] = _describe(server.url)
            body = json.dumps({"data": [{"text": " ".join(["alice met bob ."] * 300)}] * 8}).encode()
            sender = threading.Thread(target=http, args=("POST", server.url + "/invocations", body,
                                                         {"Content-Type": "application/json"}), daemon=True)
            sender.start()
            deadline = time.monotonic() + 60
            while not (busy / str(worker["pid"])).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(worker["pid"], signal.SIGKILL)
            sender.join(timeout=RESPONSE_TIMEOUT_S + 15)
        _wait_ready(server.url)
        time.sleep(1.0)  # idle: nothing queued, nothing running
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < DRAIN_TIMEOUT_S - 3


def _busy_dir(server) -> Path:
    """The serve entrypoint's busy-marker folder: ``busy`` in TorchServe's working directory (its java's cwd)."""
    import psutil

    for proc in psutil.Process(server.proc.pid).children(recursive=True):
        if proc.name() == "java":
            return Path(proc.cwd()) / "busy"
    raise RuntimeError("no TorchServe java process under the serve entrypoint")


def _wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w["status"] == "READY" for w in _describe(url)):
            return
        time.sleep(0.5)
    raise TimeoutError("the worker did not come back")


# -- multi-model: broken models fail their own load, the others keep serving ------------------------------------------
def _break(folder: Path, how: str) -> None:
    if how == "truncated weights":  # whichever weights the runtime reads (serving.json): all of them
        for weights in [*folder.glob("*.safetensors"), *folder.glob("*.onnx")]:
            weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "no task spec":
        (folder / "task_spec.json").unlink()
    elif how == "garbage task spec":
        (folder / "task_spec.json").write_text("{not json", encoding="utf-8")
    elif how == "no manifest":
        shutil.rmtree(folder / "MAR-INF")
    elif how == "empty directory":
        shutil.rmtree(folder)
        folder.mkdir()


BROKEN = ["truncated weights", "no task spec", "garbage task spec", "no manifest", "empty directory"]


def test_multi_model_broken_models_fail_alone(archives, tmp_path, record_property):
    base = tmp_path / "ml"
    shutil.copytree(archives["classif"].extracted, base / "models" / "good" / "model")
    for how in BROKEN:
        folder = shutil.copytree(archives["ner"].extracted, base / "models" / how.replace(" ", "-") / "model")
        _break(folder, how)
    server = _serve(base, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_MODEL_SERVER_TIMEOUT=str(RESPONSE_TIMEOUT_S))
    timings = {}
    try:
        server.wait_ping()
        assert post_json(server.url + "/models", {"model_name": "good",
                                                   "url": str(base / "models" / "good" / "model")})[0] == 200
        wait_invocable(server.url, "good")
        for how in BROKEN:
            name = how.replace(" ", "-")
            started = time.monotonic()
            status, _, body = http("POST", server.url + "/models", json.dumps(
                {"model_name": name, "url": str(base / "models" / name / "model")}).encode(),
                {"Content-Type": "application/json"}, timeout=RESPONSE_TIMEOUT_S * 4)
            timings[how] = (status, round(time.monotonic() - started, 1), _message(body))
            assert status >= 400, (how, body)
            assert post_json(f"{server.url}/models/{name}/invoke", {"text": "x"})[0] >= 400
            assert post_json(f"{server.url}/models/good/invoke", {"text": "the team won"})[0] == 200, how
        listed = {m["modelName"] for m in json.loads(http("GET", server.url + "/models")[2])["models"]}
        assert "good" in listed
        timings["still registered after failing"] = sorted(listed - {"good"})
    finally:
        server.stop()
    record_property("broken_model_loads", json.dumps(timings))
    print("\nbroken multi-model loads:", json.dumps(timings, indent=1))
    assert all(seconds <= RESPONSE_TIMEOUT_S * 4 for _, seconds, _ in
               [v for k, v in timings.items() if k in BROKEN])


def _message(body: bytes) -> str:
    try:
        return json.loads(body).get("message", "")[:160]
    except ValueError:
        return body[:160].decode("utf-8", "replace")


# -- a short soak (bench/soak.py): correctness only ------------------------------------------------------------------
def test_a_30_second_soak_fails_no_valid_request(archives, record_property):
    from bench.soak import run_soak
    from bench.soak_report import table

    result = run_soak(30, clients=4, archive=archives["classif"].extracted)
    print("\n" + table(result))
    record_property("soak_requests", result["requests"])
    assert result["requests"] > 0 and result["valid"] > 0 and result["invalid"] > 0
    assert result["failed_valid"] == 0, result["problems"]
    assert result["unexpected_invalid"] == 0, result["problems"]
    assert not result["request_text_in_log"]


# -- training that runs out of disk ----------------------------------------------------------------------------------
def _mount_tmpfs(target: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True)
    return proc.returncode == 0


def test_training_that_runs_out_of_disk_leaves_a_failure_and_no_model(tmp_path, tiny_model_dir, small_data,
                                                                      archives):
    from tests.helpers.opt_ml import make_opt_ml, run_train

    hps = {"task_name": "classif", "model_name": str(tiny_model_dir("bert")), "max_steps": "2",
           "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8"}
    base = make_opt_ml(tmp_path / "ml", small_data("classif"), hps)
    # a third of what the model directory needs: the packaging fails half way through
    needed = sum(p.stat().st_size for p in archives["classif"].extracted.rglob("*") if p.is_file())
    size_kb = max(64, needed // 3 // 1024)
    if not _mount_tmpfs(base / "model", f"{size_kb}k"):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): no small disk to fill")
    try:
        proc = run_train(base)
        out, _ = proc.communicate(timeout=300)
        leftovers = sorted(p.name for p in (base / "model").iterdir())
    finally:
        subprocess.run(["umount", str(base / "model")], check=False)
    assert proc.returncode != 0, out[-3000:]
    failure = (base / "output" / "failure").read_text(encoding="utf-8")
    print(f"\nout of disk ({size_kb} KB tmpfs for a {needed // 1024} KB model): {failure.strip()[:200]}")
    assert "No space left on device" in failure or "Errno 28" in failure, failure
    assert leftovers == [], f"half-written model left behind: {leftovers}"


# -- two servers on one host -----------------------------------------------------------------------------------------
def test_two_servers_can_run_on_one_host(tmp_path):
    """Regression: TorchServe opens gRPC on 7070/7071 unless told otherwise; a second server used to die at start
    ('Failed to bind to address /127.0.0.1:7070')."""
    (tmp_path / "store").mkdir()
    first = start_server(tmp_path / "store", tmp_path / "a", [], tmp_path / "a.log")
    try:
        first.wait_ready(timeout=120)
        second = start_server(tmp_path / "store", tmp_path / "b", [], tmp_path / "b.log")
        try:
            second.wait_ready(timeout=120)
        finally:
            second.stop()
    finally:
        first.stop()
