"""The SageMaker contract against the real image in real Docker: what tests/model/test_train_contract.py and
tests/server/test_serve_contract.py check on the host, run the way SageMaker runs the container.

A fake ``/opt/ml`` tree under tmp_path is bind-mounted into each container. Containers are offline
(``--network none``) unless a port must be published, and then it is published on 127.0.0.1 only.

Models are trained on the host once per module (a few steps of a tiny random BERT) and reused, except in the
train-then-serve scenario, which trains inside the container on purpose. ``pytest -s`` prints the image size
and the cold start (``docker run ... serve`` to the first prediction); docker/README.md records them.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.helpers.docker_fixtures")  # before the import below: its asserts explain failures
from launcher.jobs.local_transform import run_local_transform  # noqa: E402 -- after register_assert_rewrite, as it requires
from tasks.serving_manifest import ServingManifest  # noqa: E402 -- after register_assert_rewrite, as it requires
from tests.helpers.docker_fixtures import VARIANT, docker, report  # noqa: E402 -- after register_assert_rewrite, as it requires
from tests.helpers.serving_fixtures import batch_transform_input, http, post_json, train_and_archive  # noqa: E402 -- after register_assert_rewrite, as it requires

pytestmark = [pytest.mark.docker, pytest.mark.slow]
pytest_plugins = ["tests.helpers.docker_fixtures"]

#: what serving needs in /opt/ml/model, as `make archive`'s model.tar.gz lays it out
ARCHIVE_FILES = ("MAR-INF/MANIFEST.json", "model-config.yaml", "ts_handler.py", "task_spec.json", "config.json",
                 "serving.json", "model.safetensors")
#: SageMaker kills a container 30 s after SIGTERM
SIGTERM_GRACE_S = 30


@pytest.fixture(scope="module")
def archives(tmp_path_factory, tiny_model_dir, small_data):
    """classif and ner, trained and archived on the host, unpacked the way SageMaker unpacks model.tar.gz."""
    root = tmp_path_factory.mktemp("docker-archives")
    return {name: train_and_archive(name, "bert", task, small_data(task), False, tiny_model_dir("bert"), root)
            for name, task in (("classif", "classif"), ("ner", "ner"))}


def opt_ml(base: Path, channels: dict[str, Path] | None = None, hyperparameters: dict[str, str] | None = None,
           model: Path | None = None) -> Path:
    """A fake /opt/ml: input channels and hyperparameters for training, an (empty or given) model directory."""
    for name, source in (channels or {}).items():
        shutil.copytree(source, base / "input" / "data" / name)
    if hyperparameters is not None:
        (base / "input" / "config").mkdir(parents=True)
        (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    if model is not None:
        shutil.copytree(model, base / "model")
    (base / "model").mkdir(parents=True, exist_ok=True)  # SageMaker mounts it, empty for training
    (base / "output").mkdir(parents=True, exist_ok=True)
    return base


def wait_serving(container, timeout: float = 240) -> None:
    """Single-model mode: /ping says Healthy before the model loads, so wait for the watchdog's word too."""
    container.wait_for_log("model ready", timeout)
    assert http("GET", container.url + "/ping", timeout=5)[0] == 200, container.tail()


def wait_ping(container, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http("GET", container.url + "/ping", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        assert container.state()["Running"], f"container exited\n{container.tail()}"
        time.sleep(0.5)
    raise AssertionError(f"/ping not 200 within {timeout:.0f}s\n{container.tail()}")


def first_prediction_s(container, payload: dict, timeout: float = 300) -> float:
    """Seconds from `docker run` to the first 200 from /invocations (the cold start a client sees)."""
    deadline = container.started + timeout
    while time.monotonic() < deadline:
        try:
            if post_json(container.url + "/invocations", payload)[0] == 200:
                return time.monotonic() - container.started
        except OSError:  # the published port accepts, but nothing listens inside yet
            pass
        assert container.state()["Running"], f"container exited\n{container.tail()}"
        time.sleep(0.25)
    raise AssertionError(f"no prediction within {timeout:.0f}s\n{container.tail()}")


def sagemaker_tarball(model_dir: Path) -> bytes:
    """model.tar.gz as SageMaker uploads it: /opt/ml/model's contents at the root of the archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for path in sorted(model_dir.iterdir()):
            tf.add(path, arcname=path.name)
    return buffer.getvalue()


def serve_model_tar_gz(containers, tarball: bytes, ml: Path, what: str) -> None:
    """Deploy ``tarball`` as SageMaker does (extracted into a fresh /opt/ml/model), time the cold start, and
    check /ping and /invocations in application/json and application/jsonlines."""
    (ml / "model").mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tf:
        tf.extractall(ml / "model", filter="data")
    labels = set(json.loads((ml / "model" / "config.json").read_text())["id2label"].values())
    runtime = json.loads((ml / "model" / "serving.json").read_text())["runtime"]
    server = containers("serve", opt_ml(ml), publish=True)
    cold_start = first_prediction_s(server, {"text": "the team won the final"})
    report(f"cold start ({what}, runtime {runtime}): `docker run ... serve` to the first prediction "
           f"in {cold_start:.1f}s")
    assert http("GET", server.url + "/ping")[0] == 200
    status, ctype, body = post_json(server.url + "/invocations",
                                    {"data": [{"text": "the striker scored twice"}, {"text": "prices grew"}]})
    assert status == 200 and ctype.startswith("application/json"), body
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 2 and {p["pred"] for p in predictions} <= labels, predictions
    status, ctype, body = http("POST", server.url + "/invocations", b'{"text": "a b"}\n{"text": "c"}\n',
                               {"Content-Type": "application/jsonlines"})
    assert status == 200 and ctype.startswith("application/jsonlines"), body
    answers = [json.loads(line) for line in body.splitlines()]
    assert len(answers) == 2 and all(a["pred"] in labels for a in answers), answers


def test_serve_a_model_tar_gz_in_json_and_jsonlines(tmp_path, containers, archives):
    serve_model_tar_gz(containers, sagemaker_tarball(archives["classif"].extracted), tmp_path / "ml",
                       "archive made on the host")


def test_train_in_the_container_then_serve_its_artifact(tmp_path, containers, tiny_model_dir, small_data):
    # SageMaker's hyperparameters.json holds strings; the base model comes in as a channel of its own
    hps = {"task_name": "classif", "max_steps": "3", "model_name": "/opt/ml/input/data/base",
           "per_device_train_batch_size": "8"}
    ml = opt_ml(tmp_path / "train", {"training": small_data("classif"), "base": tiny_model_dir("bert")}, hps)
    trainer = containers("train", ml)
    code = trainer.wait(timeout=600)
    failure = ml / "output" / "failure"
    assert code == 0, (failure.read_text() if failure.exists() else "no /opt/ml/output/failure") + trainer.tail()
    assert not failure.exists(), failure.read_text()
    assert "test_accuracy=" in trainer.logs()  # the metric lines SageMaker's MetricDefinitions read
    # no GPU is visible here: one line says where training runs, and (GPU image) why not on the GPU
    device_lines = [line for line in trainer.logs().splitlines() if "training on the CPU" in line]
    assert len(device_lines) == 1, trainer.tail()
    if VARIANT == "gpu":
        assert "no CUDA GPU is visible (torch is a CUDA" in device_lines[0], device_lines
    missing = [name for name in ARCHIVE_FILES if not (ml / "model" / name).is_file()]
    assert not missing, f"/opt/ml/model is not laid out as model.tar.gz: missing {missing}"
    serve_model_tar_gz(containers, sagemaker_tarball(ml / "model"), tmp_path / "serve", "trained in the container")


def test_bad_training_data_writes_the_failure_and_no_model(tmp_path, containers, tiny_model_dir, small_data):
    data = tmp_path / "bad"
    shutil.copytree(small_data("ner"), data)
    lines = (data / "dev.csv").read_text().splitlines()
    lines[3] += " O"  # one label too many on line 4
    (data / "dev.csv").write_text("\n".join(lines) + "\n")
    ml = opt_ml(tmp_path / "ml", {"training": data, "base": tiny_model_dir("bert")},
                {"task_name": "ner", "model_name": "/opt/ml/input/data/base"})
    trainer = containers("train", ml)
    code = trainer.wait(timeout=300)
    assert code != 0, trainer.tail()
    failure = (ml / "output" / "failure").read_text()
    assert "dev.csv, line 4, column labels" in failure and "expected one BIO label per word" in failure, failure
    assert list((ml / "model").iterdir()) == []


def test_multi_model_two_tasks_side_by_side(tmp_path, containers, archives):
    ml = tmp_path / "ml"
    for name, served in archives.items():
        shutil.copytree(served.extracted, ml / "models" / name / "model")
    server = containers("serve", opt_ml(ml), {"SAGEMAKER_MULTI_MODEL": "true"}, publish=True)
    wait_ping(server)
    for name in archives:
        status, _, body = post_json(server.url + "/models", {"model_name": name, "url": f"/opt/ml/models/{name}/model"})
        assert status == 200, (body, server.tail())
    listed = {m["modelName"] for m in json.loads(http("GET", server.url + "/models")[2])["models"]}
    assert listed == {"classif", "ner"}

    status, _, body = post_json(server.url + "/models/ner/invoke", {"text": "Bob Chen met Emma Novak"})
    assert status == 200, (body, server.tail())
    assert len(json.loads(body)["predictions"][0]["pred"]) == 5  # one label per word
    status, _, body = post_json(server.url + "/models/classif/invoke", {"text": "the team won"})
    assert status == 200, (body, server.tail())
    assert isinstance(json.loads(body)["predictions"][0]["pred"], str)

    status, _, body = http("DELETE", server.url + "/models/classif")
    assert status == 200, (body, server.tail())
    assert post_json(server.url + "/models/classif/invoke", {"text": "the team won"})[0] == 404
    assert post_json(server.url + "/models/ner/invoke", {"text": "still here"})[0] == 200


def test_batch_transform_one_line_per_input_line_with_a_bad_line(tmp_path, containers, archives):
    ml = opt_ml(tmp_path / "ml", model=archives["classif"].extracted)
    env = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1", "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD",
           "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2"}
    server = containers("serve", ml, env, publish=True)
    source, output, lines, bad = batch_transform_input(tmp_path)
    assert source.stat().st_size > 1024 * 1024
    wait_serving(server)
    started = time.monotonic()
    summary = run_local_transform(source, output, url=server.url, max_payload_mb=1, concurrency=2)
    report(f"Batch Transform: {summary.records} records ({source.stat().st_size / 1e6:.1f} MB) in "
           f"{summary.requests} requests, {time.monotonic() - started:.1f}s")
    assert not summary.failed, (summary.describe(), server.tail())
    assert summary.requests > 1, "the input must have been split into several payloads under 1 MB"
    out = output.read_text().split("\n")
    assert out[-1] == "" and "" not in out[:-1], "no blank lines in the assembled output"
    answers = [json.loads(line) for line in out[:-1]]
    assert len(answers) == len(lines)
    first = answers[bad[0]]  # record indices count within the payload the line was sent in
    assert first == {"error": f"record {first['record']}: text must be a string, got int", "record": first["record"]}
    assert "not valid JSON" in answers[bad[1]].get("error", ""), answers[bad[1]]
    assert all("pred" in a for i, a in enumerate(answers) if i not in bad)


@pytest.fixture(scope="module")
def torch_classif(tmp_path_factory, archives) -> Path:
    """The classif checkpoint archived for torch (``--runtime torch``), unpacked: model.safetensors is what serves."""
    from archive.build import RuntimeOptions, build

    root = tmp_path_factory.mktemp("docker-torch-archive")
    built = build(archives["classif"].checkpoint, root / "store", name="classif",
                  runtime=RuntimeOptions(runtime="torch"))
    with tarfile.open(built.tarball) as tf:
        tf.extractall(root / "extracted", filter="data")
    return root / "extracted"


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_a_model_that_fails_to_load_stops_the_container(tmp_path, containers, archives, torch_classif, runtime):
    ml = opt_ml(tmp_path / "ml", model=torch_classif if runtime == "torch" else archives["classif"].extracted)
    serving = json.loads((ml / "model" / "serving.json").read_text())
    assert serving["runtime"] == runtime, serving
    # the files the worker may load: torch's weights, or every gated CPU path's model (auto picks one by the CPU)
    gated = ServingManifest.from_dict(serving).passed_paths
    names = {name for path in gated for name in path.files} or {serving["onnx_file"] or "model.safetensors"}
    for name in names:
        weights = ml / "model" / name
        weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    startup_timeout = 60
    server = containers("serve", ml, {"SMTX_STARTUP_TIMEOUT": str(startup_timeout)})
    code = server.wait(timeout=startup_timeout + 60)
    assert code != 0, server.tail()
    assert "the model failed to load" in server.logs(), server.tail()


def test_sigterm_during_traffic_answers_in_flight_requests(tmp_path, containers, archives):
    server = containers("serve", opt_ml(tmp_path / "ml", model=archives["ner"].extracted), publish=True)
    wait_serving(server)
    long_text = " ".join(["Alice Martin flew to Paris and met Bob Chen ."] * 400)
    results: list = []

    def send() -> None:
        try:
            # enough work that the requests outlast the pause below even on a fast, quiet machine
            status = post_json(server.url + "/invocations", {"data": [{"text": long_text}] * 16})[0]
            results.append((status, time.monotonic()))
        except OSError as exc:
            results.append((exc, time.monotonic()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # requests are queued or running
    stopped = time.monotonic()
    stop = docker("stop", "--time", str(SIGTERM_GRACE_S), server.name, timeout=SIGTERM_GRACE_S + 30)
    took = time.monotonic() - stopped
    for thread in threads:
        thread.join(timeout=60)
    report(f"docker stop during traffic: exited in {took:.1f}s")
    assert stop.returncode == 0
    assert server.state()["ExitCode"] == 0, server.tail()  # 137 would mean Docker had to SIGKILL it
    assert took < SIGTERM_GRACE_S
    assert [status for status, _ in results] == [200] * 4, (results, server.tail())
    assert any(done > stopped for _, done in results), "no request was still in flight when SIGTERM came"
