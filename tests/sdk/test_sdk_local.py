"""The SageMaker Python SDK (``sagemaker<3``) in local mode as a client of our image: the second route beside the
launcher. ``make test-sdk`` runs this module in its own venv (tests/sdk/run.sh); anywhere else it skips.

Local mode runs the image through docker-compose on this machine, with ``file://`` data and artifacts, so no AWS
account is touched: the session gets a fake region, a role string and dummy credentials. A tuner cannot run in
local mode, so the tuning test builds the ``CreateHyperParameterTuningJob`` request the SDK would send and reads it.

Environment (set by run.sh): ``SMTX_SDK=1``, ``SMTX_SDK_WORK`` (what tests/sdk/prepare.py wrote), ``SMTX_SDK_IMAGE``.
"""
from __future__ import annotations

import json
import os
import socket
import tarfile
import time
from pathlib import Path

import pytest

if os.environ.get("SMTX_SDK") != "1":
    pytest.skip("the SageMaker SDK tier runs only through `make test-sdk` (its own venv, Docker, docker-compose)",
                allow_module_level=True)

import boto3
from sagemaker.deserializers import JSONDeserializer, JSONLinesDeserializer
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
from sagemaker.model import Model
from sagemaker.parameter import ContinuousParameter, IntegerParameter
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONLinesSerializer, JSONSerializer
from sagemaker.session import Session
from sagemaker.tuner import HyperparameterTuner, _TuningJob

pytestmark = [pytest.mark.sdk, pytest.mark.docker, pytest.mark.slow]

WORK = Path(os.environ.get("SMTX_SDK_WORK", "/nonexistent"))
IMAGE = os.environ.get("SMTX_SDK_IMAGE", "smtx:cpu")
ROLE = "arn:aws:iam::111111111111:role/SmtxSdkTest"  # local mode never assumes it
REGION = "us-east-1"
OBJECTIVE = "dev_accuracy"


def report(message: str) -> None:
    print(f"\n[sdk] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tuning() -> dict:
    return json.loads((WORK / "tuning.json").read_text())


@pytest.fixture(scope="module")
def credentials() -> None:
    """Dummy credentials: botocore wants some before it builds a client, and nothing here reaches AWS."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(key, value)


@pytest.fixture(scope="module")
def session(credentials) -> LocalSession:
    local = LocalSession(boto_session=boto3.Session(region_name=REGION))
    # a port of its own: the SDK publishes the serving container on the host's 8080 by default
    local.config = {"local": {"local_code": True, "serving_port": free_port(), "container_root": str(WORK)}}
    return local


def make_estimator(session, tuning: dict, output: Path, instance_type: str = "local") -> Estimator:
    return Estimator(
        image_uri=IMAGE, role=ROLE, instance_count=1, instance_type=instance_type, sagemaker_session=session,
        output_path=f"file://{output}" if instance_type == "local" else "s3://smtx-sdk-test/out",
        metric_definitions=tuning["metric_definitions"],
        # the base model comes in as a channel of its own, as the launcher sends it; 3 steps of a tiny BERT
        hyperparameters={"task_name": tuning["task"], "model_name": "/opt/ml/input/data/base", "max_steps": 3,
                         "per_device_train_batch_size": 8})


@pytest.fixture(scope="module")
def trained(session, tuning) -> str:
    """``Estimator.fit`` on file:// channels: the model.tar.gz the SDK reports (a file:// URI)."""
    estimator = make_estimator(session, tuning, WORK / "artifacts")
    started = time.monotonic()
    estimator.fit({"training": f"file://{WORK / 'training'}", "base": f"file://{WORK / 'base'}"}, logs=True)
    report(f"Estimator.fit (3 steps of a tiny BERT in {IMAGE}): {time.monotonic() - started:.0f}s")
    return str(estimator.model_data)


def test_estimator_fit_writes_a_model_tar_gz_serving_can_use(trained):
    path = Path(trained.removeprefix("file://"))
    assert path.name == "model.tar.gz" and path.is_file(), trained
    with tarfile.open(path) as tf:
        names = set(tf.getnames())
    wanted = {"MAR-INF/MANIFEST.json", "task_spec.json", "config.json", "serving.json", "ts_handler.py"}
    assert wanted <= {name.removeprefix("./") for name in names}, sorted(names)


@pytest.fixture(scope="module")
def predictor(session, trained):
    # without predictor_cls, deploy returns None
    model = Model(image_uri=IMAGE, model_data=trained, role=ROLE, sagemaker_session=session, predictor_cls=Predictor)
    started = time.monotonic()
    predictor = model.deploy(initial_instance_count=1, instance_type="local")
    report(f"Model.deploy to a healthy endpoint: {time.monotonic() - started:.0f}s")
    try:
        yield predictor
    finally:
        predictor.delete_endpoint()


@pytest.fixture(scope="module")
def labels(trained) -> set[str]:
    """The labels the trained model knows (its config.json in model.tar.gz): every answer must be one of them."""
    with tarfile.open(trained.removeprefix("file://")) as tf:
        member = next(m for m in tf.getmembers() if m.name.removeprefix("./") == "config.json")
        config = json.load(tf.extractfile(member))
    return set(config["id2label"].values())


def test_predict_in_json(predictor, labels):
    predictor.serializer, predictor.deserializer = JSONSerializer(), JSONDeserializer()
    answer = predictor.predict({"data": [{"text": "the striker scored twice"}, {"text": "prices grew"}]})
    predictions = answer["predictions"]
    assert len(predictions) == 2 and {p["pred"] for p in predictions} <= labels, answer


def test_predict_in_json_lines(predictor, labels):
    predictor.serializer = JSONLinesSerializer(content_type="application/jsonlines")
    predictor.deserializer = JSONLinesDeserializer(accept=("application/jsonlines",))
    answers = predictor.predict([{"text": "a b"}, {"text": "c"}, {"text": "the final"}])
    assert len(answers) == 3 and {a["pred"] for a in answers} <= labels, answers


def test_transformer_multirecord_line_gives_one_line_per_input_line(session, trained, labels, tmp_path):
    source = tmp_path / "input"
    source.mkdir()
    records = [{"text": f"record {i}: the team won the final {'again ' * (i % 5)}"} for i in range(40)]
    (source / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    output = tmp_path / "output"
    model = Model(image_uri=IMAGE, model_data=trained, role=ROLE, sagemaker_session=session)
    transformer = model.transformer(instance_count=1, instance_type="local", strategy="MultiRecord",
                                    assemble_with="Line", accept="application/jsonlines",
                                    output_path=f"file://{output}", max_payload=1)
    started = time.monotonic()
    transformer.transform(f"file://{source}", content_type="application/jsonlines", split_type="Line", wait=True,
                          logs=False)  # the logs it would follow are CloudWatch's, unreachable offline
    report(f"Transformer, {len(records)} records, MultiRecord + Line: {time.monotonic() - started:.0f}s")
    text = (output / "records.jsonl.out").read_text()
    # SDK 2.x local mode writes b"\n" after every answer body, and our jsonlines body already ends in one, so each
    # request leaves one empty line (here one request: 40 short records fit in max_payload). Real SageMaker's Line
    # assembly (and launcher.jobs.local_transform) reads that final newline as ending the last line instead.
    assert text.endswith("\n\n") and "\n\n" not in text[:-2], repr(text[-200:])
    lines = text[:-1].splitlines()
    assert len(lines) == len(records), f"{len(lines)} output lines for {len(records)} input lines"
    assert {json.loads(line)["pred"] for line in lines} <= labels, lines[:3]


def test_tuner_request_carries_our_metric_definitions_and_declared_bounds(credentials, tuning, tmp_path):
    # a plain Session (not local): local mode has no tuning jobs, so build the request it would send, offline
    remote = Session(boto_session=boto3.Session(region_name=REGION), default_bucket="smtx-sdk-test")
    estimator = make_estimator(remote, tuning, tmp_path, "ml.m5.xlarge")
    declared = tuning["hyperparameters"]
    rate, steps = declared["learning_rate"], declared["max_steps"]
    assert rate["kind"] == "float" and steps["kind"] == "int", (rate, steps)
    ranges = {"learning_rate": ContinuousParameter(max(rate["minimum"], 1e-6), 1e-3, scaling_type="Logarithmic"),
              "max_steps": IntegerParameter(max(steps["minimum"], 1), 50)}
    names = [d["Name"] for d in tuning["metric_definitions"]]
    assert OBJECTIVE in names, names
    tuner = HyperparameterTuner(estimator, objective_metric_name=OBJECTIVE, hyperparameter_ranges=ranges,
                                metric_definitions=tuning["metric_definitions"], max_jobs=4, max_parallel_jobs=2,
                                objective_type="Maximize")
    tuner._prepare_for_tuning(job_name="smtx-sdk-tune")
    request = remote._get_tuning_request(**_TuningJob._get_tuner_args(tuner, "s3://smtx-sdk-test/data/"))
    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": OBJECTIVE}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert {r["Name"] for r in config["ParameterRanges"]["ContinuousParameterRanges"]} == {"learning_rate"}
    assert {r["Name"] for r in config["ParameterRanges"]["IntegerParameterRanges"]} == {"max_steps"}
    job = request["TrainingJobDefinition"]
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == tuning["metric_definitions"]
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    # strings, as our train entrypoint reads them; the tuned two are left out of the static ones
    assert job["StaticHyperParameters"] == {"task_name": tuning["task"], "model_name": "/opt/ml/input/data/base",
                                            "per_device_train_batch_size": "8"}, job["StaticHyperParameters"]
