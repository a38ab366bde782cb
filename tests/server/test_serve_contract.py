"""The SageMaker serving contract on the host: `python -m entrypoints serve` with a fake /opt/ml tree.

Single model, multi-model (two tasks side by side), Batch Transform driven the way SageMaker drives it, a model
that cannot load, a bad environment value, and SIGTERM during traffic -- a real TorchServe each time.
"""
from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from launcher.jobs.local_transform import run_local_transform
from tests.helpers.serving_fixtures import (
    Serve,
    batch_transform_input,
    http,
    post_json,
    train_and_archive,
    wait_invocable,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archives(tmp_path_factory, tiny_model_dir, small_data):
    root = tmp_path_factory.mktemp("serve-contract")
    return {name: train_and_archive(name, "bert", task, small_data(task), False, tiny_model_dir("bert"), root)
            for name, task in (("classif", "classif"), ("ner", "ner"))}


def _single(base: Path, extracted: Path) -> Path:
    shutil.copytree(extracted, base / "model")
    return base


def test_single_model_serves_json_and_jsonlines(tmp_path, archives):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = Serve(_single(tmp_path / "ml", archives["ner"].extracted), TMPDIR=str(scratch))
    try:
        server.wait_ping()
        status, _, body = post_json(server.url + "/invocations", {"data": [{"text": "Alice Martin flew to Paris ."}]})
        assert status == 200 and len(json.loads(body)["predictions"][0]["pred"]) == 6
        status, ctype, body = http("POST", server.url + "/invocations", b'{"text": "a b"}\n{"text": "c"}\n',
                                   {"Content-Type": "application/jsonlines"})
        assert status == 200 and ctype.startswith("application/jsonlines") and len(body.splitlines()) == 2
        # single-model mode: no route loads a model
        assert post_json(server.url + "/models", {"model_name": "x", "url": str(tmp_path)})[0] == 405
        assert [p.name for p in scratch.iterdir()], "the server works in a folder under TMPDIR"
    finally:
        assert server.stop() == 0
    assert not list(scratch.iterdir()), "a stopped server leaves no work folder behind"


def test_the_environment_sets_batching_workers_and_timeout(tmp_path, archives):
    """TorchServe 0.12 prefers the archive's model-config.yaml to config.properties: the SageMaker environment
    must still win, for the model as TorchServe describes it, and the archive itself is left untouched."""
    base = _single(tmp_path / "ml", archives["classif"].extracted)
    original = (base / "model" / "model-config.yaml").read_text()
    server = Serve(base, SAGEMAKER_TS_BATCH_SIZE="3", SAGEMAKER_TS_MAX_BATCH_DELAY="7",
                   SAGEMAKER_MODEL_SERVER_WORKERS="2", SAGEMAKER_MODEL_SERVER_TIMEOUT="33")
    try:
        server.wait_ping()
        described = json.loads(http("GET", server.url + "/models/model")[2])[0]
        assert (described["batchSize"], described["maxBatchDelay"], described["minWorkers"], described["maxWorkers"],
                described["responseTimeout"]) == (3, 7, 2, 2, 33)
        assert post_json(server.url + "/invocations", {"text": "the team won"})[0] == 200
    finally:
        assert server.stop() == 0
    assert (base / "model" / "model-config.yaml").read_text() == original


def test_without_environment_the_archive_settings_apply(tmp_path, archives):
    base = _single(tmp_path / "ml", archives["classif"].extracted)
    import yaml

    archived = yaml.safe_load((base / "model" / "model-config.yaml").read_text())
    server = Serve(base)
    try:
        server.wait_ping()
        described = json.loads(http("GET", server.url + "/models/model")[2])[0]
        assert (described["batchSize"], described["maxBatchDelay"], described["responseTimeout"]) == \
            (archived["batchSize"], archived["maxBatchDelay"], archived["responseTimeout"])
    finally:
        assert server.stop() == 0


def test_multi_model_two_tasks_side_by_side(tmp_path, archives):
    base = tmp_path / "ml"
    for name, served in archives.items():
        shutil.copytree(served.extracted, base / "models" / name / "model")
    outside = tmp_path / "elsewhere"
    shutil.copytree(archives["classif"].extracted, outside)
    server = Serve(base, SAGEMAKER_MULTI_MODEL="true")
    try:
        server.wait_ping()
        for name in archives:
            status, _, body = post_json(server.url + "/models",
                                        {"model_name": name, "url": str(base / "models" / name / "model")})
            assert status == 200, body
        assert post_json(server.url + "/models", {"model_name": "classif",
                                                  "url": str(base / "models" / "classif" / "model")})[0] == 409
        listed = {m["modelName"] for m in json.loads(http("GET", server.url + "/models")[2])["models"]}
        assert listed == {"classif", "ner"}
        wait_invocable(server.url, "classif")
        wait_invocable(server.url, "ner")
        # without environment, a registered model batches as its archive says (TorchServe alone would leave a JSON
        # registration at maxBatchDelay -10000: see entrypoints.gate.archive_batch_delay)
        described = json.loads(http("GET", server.url + "/models/ner")[2])[0]
        assert (described["batchSize"], described["maxBatchDelay"]) == (8, 50), described  # SMALL_BATCHES
        status, _, body = post_json(server.url + "/models/ner/invoke", {"text": "Bob Chen met Emma Novak"})
        assert status == 200 and len(json.loads(body)["predictions"][0]["pred"]) == 5
        # a model outside /opt/ml/models is refused; the loaded ones keep serving
        status, _, _ = post_json(server.url + "/models", {"model_name": "rogue", "url": str(outside)})
        assert status >= 400
        assert post_json(server.url + "/models/classif/invoke", {"text": "the team won"})[0] == 200
        assert http("DELETE", server.url + "/models/classif")[0] == 200
        assert post_json(server.url + "/models/classif/invoke", {"text": "x"})[0] == 404
        assert post_json(server.url + "/models/ner/invoke", {"text": "still here"})[0] == 200
    finally:
        server.stop()


def test_multi_model_registrations_get_the_environment_batching_and_workers(tmp_path, archives):
    """Issue 23: SAGEMAKER_TS_BATCH_SIZE, SAGEMAKER_TS_MAX_BATCH_DELAY and SAGEMAKER_MODEL_SERVER_WORKERS apply to a
    model loaded the way SageMaker's multi-model endpoint loads it (POST /models with model_name and url), over the
    archive's own model-config.yaml, as they do to a single model; a registration naming its own batch size
    keeps it."""
    import yaml

    base = tmp_path / "ml"
    model = base / "models" / "0123abcd" / "model"  # SageMaker's layout: /opt/ml/models/{hash}/model
    shutil.copytree(archives["classif"].extracted, model)
    archived = yaml.safe_load((model / "model-config.yaml").read_text())
    assert (archived["batchSize"], archived["maxBatchDelay"]) != (3, 7)
    server = Serve(base, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_TS_BATCH_SIZE="3", SAGEMAKER_TS_MAX_BATCH_DELAY="7",
                   SAGEMAKER_MODEL_SERVER_WORKERS="2")
    try:
        server.wait_ping()
        status, _, body = post_json(server.url + "/models", {"model_name": "0123abcd", "url": str(model)})
        assert status == 200, body
        status, _, body = post_json(server.url + "/models", {"model_name": "own", "url": str(model),
                                                             "batch_size": 5, "initial_workers": 1})
        assert status == 200, body
        wait_invocable(server.url, "0123abcd")
        described = json.loads(http("GET", server.url + "/models/0123abcd")[2])[0]
        assert (described["batchSize"], described["maxBatchDelay"], described["minWorkers"],
                described["maxWorkers"]) == (3, 7, 2, 2), described
        assert len(described["workers"]) == 2
        own = json.loads(http("GET", server.url + "/models/own")[2])[0]
        assert (own["batchSize"], own["maxBatchDelay"], own["minWorkers"]) == (5, 7, 1), own
        assert post_json(server.url + "/models/0123abcd/invoke", {"text": "the team won"})[0] == 200
    finally:
        server.stop()


def test_batch_transform_one_line_per_input_line_with_a_bad_line(tmp_path, archives):
    base = _single(tmp_path / "ml", archives["classif"].extracted)
    server = Serve(base, SAGEMAKER_BATCH="true", SAGEMAKER_MAX_PAYLOAD_IN_MB="1",
                   SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD", SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="2")
    source, output, lines, bad = batch_transform_input(tmp_path)
    try:
        server.wait_ping()
        summary = run_local_transform(source, output, url=server.url, max_payload_mb=1, concurrency=2)
        assert summary.requests > 1, "the input must have been split into several payloads under 1 MB"
        out = output.read_text().split("\n")
        assert out[-1] == "" and "" not in out[:-1], "no blank lines in the assembled output"
        answers = [json.loads(line) for line in out[:-1]]
        assert len(answers) == len(lines)
        first = answers[bad[0]]  # record indices count within the payload SageMaker sent
        record = first["record"]
        assert first == {"error": f"record {record}: text must be a string, got int", "record": record}
        assert "error" in answers[bad[1]] and "not valid JSON" in answers[bad[1]]["error"]
        assert all("pred" in a for i, a in enumerate(answers) if i not in bad)
    finally:
        server.stop()


def test_a_model_that_cannot_load_fails_ping_with_the_reason(tmp_path, archives):
    base = _single(tmp_path / "ml", archives["classif"].extracted)
    serving = json.loads((base / "model" / "serving.json").read_text())
    # the file the runtime loads: an ONNX archive carries the graph, not the weights
    weights = base / "model" / (serving["onnx_file"] or "model.safetensors")
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    server = Serve(base, SMTX_STARTUP_TIMEOUT="120")
    try:
        server.proc.wait(timeout=150)
    finally:
        server.stop()
    assert server.proc.returncode != 0
    log = server.log.read_text()
    assert "the model failed to load" in log
    with pytest.raises(OSError):
        http("GET", server.url + "/ping", timeout=2)


def test_a_bad_environment_value_is_a_clear_startup_error(tmp_path, archives):
    server = Serve(_single(tmp_path / "ml", archives["classif"].extracted), SAGEMAKER_TS_BATCH_SIZE="eight")
    assert server.proc.wait(timeout=60) == 2
    assert "SAGEMAKER_TS_BATCH_SIZE='eight' is not valid; expected an integer" in server.log.read_text()


def test_sigterm_during_traffic_answers_in_flight_requests(tmp_path, archives):
    server = Serve(_single(tmp_path / "ml", archives["ner"].extracted))
    server.wait_ping()
    long_text = " ".join(["Alice Martin flew to Paris and met Bob Chen ."] * 400)
    results: list = []

    def send() -> None:
        try:
            results.append(post_json(server.url + "/invocations", {"data": [{"text": long_text}] * 4})[0])
        except OSError as exc:
            results.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # requests are queued or running
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    assert server.proc.wait(timeout=40) == 0
    assert time.monotonic() - started < 30, "SageMaker kills the container 30 s after SIGTERM"
    assert results == [200] * 4, results
