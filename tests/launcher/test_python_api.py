"""Endpoints (real-time and multi-model), invocations, Batch Transform and cleanup against moto in-process."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends
from moto.sagemakerruntime.models import sagemakerruntime_backends

from launcher.aws import AwsSettings, Clients
from launcher.cleanup import delete_endpoint, delete_model, list_resources
from launcher.deploy import ServingConfig, create_model, deploy, wait_for_endpoint
from launcher.errors import JobFailed, ResponseError, SettingError
from launcher.hyperparameters import Hyperparameters
from launcher.invoke import invoke, read_records
from launcher.multimodel import add_model, deploy_multi_model, list_target_models
from launcher.training import TrainingConfig, start_training_job
from launcher.transform import TransformConfig, run_transform, start_transform_job, wait_for_transform
from launcher.waiting import Poller
from tests.helpers.moto_sagemaker import answer_invocations, write_model_artifacts, write_transform_output

REGION = "eu-west-1"
BUCKET = "smtx-serving-test"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
MODEL_DATA = f"s3://{BUCKET}/models/classif/output/model.tar.gz"
SERVING = ServingConfig("123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1", ROLE,
                        instance_type="ml.g4dn.xlarge", workers=2, batch_size=16, max_batch_delay_ms=20,
                        response_timeout_s=120, model_server_timeout_s=120)
INSTANT = Poller(interval_s=0, timeout_s=10, sleep=lambda _: None)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        made = Clients(AwsSettings(region=REGION))
        made.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        bucket, key = MODEL_DATA[len("s3://"):].split("/", 1)
        made.s3.put_object(Bucket=bucket, Key=key, Body=b"not really a tarball")
        yield made


def _backend():  # type: ignore[no-untyped-def]
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


def test_deploy_sends_the_container_environment_and_waits_for_in_service(clients: Clients) -> None:
    made = deploy(clients, MODEL_DATA, SERVING, wait=False)
    assert made.endpoint == made.endpoint_config == made.model
    container = clients.sagemaker.describe_model(ModelName=made.model)["PrimaryContainer"]
    assert container["ModelDataUrl"] == MODEL_DATA and container["Mode"] == "SingleModel"
    assert container["Environment"] == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_TS_BATCH_SIZE": "16",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "20", "SAGEMAKER_TS_RESPONSE_TIMEOUT": "120",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "120"}
    variant = clients.sagemaker.describe_endpoint_config(EndpointConfigName=made.endpoint_config)[
        "ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        made.model, "ml.g4dn.xlarge", 1)
    endpoint = _backend().endpoints[made.endpoint]
    endpoint.endpoint_status = "Creating"
    states = iter(["Creating", "InService"])
    shown: list[str] = []
    poller = Poller(interval_s=0, timeout_s=10, sleep=lambda _: setattr(endpoint, "endpoint_status", next(states)))
    assert wait_for_endpoint(clients, made.endpoint, poller, shown.append)["EndpointStatus"] == "InService"
    assert shown == [f"endpoint {made.endpoint}: Creating", f"endpoint {made.endpoint}: InService"]


def test_a_failed_endpoint_raises_with_its_reason(clients: Clients) -> None:
    made = deploy(clients, MODEL_DATA, SERVING, wait=False)
    endpoint = _backend().endpoints[made.endpoint]
    endpoint.endpoint_status, endpoint.failure_reason = "Failed", "The primary container did not pass the ping"
    with pytest.raises(JobFailed, match="did not pass the ping"):
        wait_for_endpoint(clients, made.endpoint, INSTANT, lambda _: None)


def test_deploy_from_a_training_job_needs_a_completed_job_and_a_tarball_uri(clients: Clients) -> None:
    config = TrainingConfig(image_uri=SERVING.image_uri, role_arn=ROLE, data_uri=f"s3://{BUCKET}/data/",
                            output_uri=f"s3://{BUCKET}/output", hyperparameters=Hyperparameters(task_name="ner"))
    job = start_training_job(clients, config)
    with pytest.raises(SettingError, match=f"has no key 'output/{job}/output/model.tar.gz' .the artifact of "):
        deploy(clients, job, SERVING, wait=False)  # moto trains nothing: the archive is missing
    write_model_artifacts(REGION)
    job = start_training_job(clients, config)
    made = deploy(clients, job, SERVING, wait=False)
    assert made.model_data == f"s3://{BUCKET}/output/{job}/output/model.tar.gz"
    _backend().training_jobs[job].training_job_status = "InProgress"
    with pytest.raises(SettingError, match="a Completed training job"):
        deploy(clients, job, SERVING, wait=False)
    with pytest.raises(SettingError, match="model_data"):
        deploy(clients, f"s3://{BUCKET}/models/classif/", SERVING, wait=False)
    with pytest.raises(SettingError, match="training_job='smtx-classif-missing': expected the name of an existing"):
        deploy(clients, "smtx-classif-missing", SERVING, wait=False)


def test_multi_model_endpoint_serves_archives_added_under_its_prefix(clients: Clients) -> None:
    prefix = f"s3://{BUCKET}/mme"
    made = deploy_multi_model(clients, prefix, SERVING, INSTANT, emit=lambda _: None)
    container = clients.sagemaker.describe_model(ModelName=made.model)["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == f"{prefix}/"
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"
    assert add_model(clients, MODEL_DATA, prefix) == "classif.tar.gz"
    assert add_model(clients, MODEL_DATA, prefix, "classif-v2.tar.gz") == "classif-v2.tar.gz"
    assert list_target_models(clients, prefix) == ["classif-v2.tar.gz", "classif.tar.gz"]
    with pytest.raises(SettingError, match="not already under"):
        add_model(clients, MODEL_DATA, prefix, "classif.tar.gz")
    answer_invocations(REGION)
    assert invoke(clients, made.endpoint, [{"text": "hi"}], target_model="classif-v2.tar.gz") == [
        {"pred": "positive", "proba": 0.9, "model": "classif-v2.tar.gz"}]


def test_invoke_encodes_both_content_types_and_checks_the_answer(clients: Clients, tmp_path: Path) -> None:
    queue = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION].results_queue
    queue.append((json.dumps({"predictions": [{"pred": "a"}, {"pred": "b"}]}), "application/json", "AllTraffic", ""))
    queue.append(('{"pred": "a"}\n{"error": "text is empty"}\n', "application/jsonlines", "AllTraffic", ""))
    queue.append((json.dumps({"predictions": [{"pred": "a"}]}), "application/json", "AllTraffic", ""))
    records = [{"text": "one"}, {"text": "two"}]
    assert invoke(clients, "ep", records, "json") == [{"pred": "a"}, {"pred": "b"}]
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "one"}\n{"text": ""}\n', encoding="utf-8")
    assert invoke(clients, "ep", read_records(path), "jsonlines") == [{"pred": "a"}, {"error": "text is empty"}]
    with pytest.raises(ResponseError, match="1 predictions for 2 records"):
        invoke(clients, "ep", [{"text": "x"}, {"text": "y"}], "json")


def test_batch_transform_uploads_runs_downloads_and_checks_each_line(clients: Clients, tmp_path: Path) -> None:
    create_model(clients, "smtx-model-1", SERVING, {"ModelDataUrl": MODEL_DATA})
    write_transform_output(REGION)
    source = tmp_path / "records.jsonl"
    source.write_text('{"text": "a"}\n{"txt": "typo"}\n{"text": "c"}\n', encoding="utf-8")
    report = run_transform(clients, source, f"s3://{BUCKET}/transform", TransformConfig("smtx-model-1"),
                           tmp_path / "out" / "records.jsonl.out", INSTANT, emit=lambda _: None)
    assert report.ok and report.check.output_lines == 3
    assert [(e.line, e.message) for e in report.check.errors] == [(2, "record has no 'text' string")]
    assert report.input_uri.endswith(f"{report.job_name}/input/records.jsonl")
    job = clients.sagemaker.describe_transform_job(TransformJobName=report.job_name)
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 6
    assert job["TransformInput"]["SplitType"] == "Line" and job["TransformOutput"]["AssembleWith"] == "Line"
    assert job["TransformInput"]["ContentType"] == job["TransformOutput"]["Accept"] == "application/jsonlines"


def test_a_failed_transform_raises_with_its_reason(clients: Clients) -> None:
    create_model(clients, "smtx-model-2", SERVING, {"ModelDataUrl": MODEL_DATA})
    name = start_transform_job(clients, "smtx-transform-x", TransformConfig("smtx-model-2"),
                               f"s3://{BUCKET}/in/x.jsonl", f"s3://{BUCKET}/out/")
    job = _backend().transform_jobs[name]
    job.transform_job_status, job.failure_reason = "Failed", "ClientError: See job logs for more information"
    with pytest.raises(JobFailed, match="ended Failed: ClientError"):
        wait_for_transform(clients, name, INSTANT, lambda _: None)


def test_delete_removes_what_deploy_created_and_list_shows_what_exists(clients: Clients) -> None:
    made = deploy(clients, MODEL_DATA, SERVING, wait=False)
    other = deploy(clients, MODEL_DATA, SERVING, wait=False)
    listed = list_resources(clients)
    assert {made.endpoint, other.endpoint} == {name for name, _ in listed["endpoints"]}
    assert dict(listed["endpoints"])[made.endpoint] == "InService"
    assert list_resources(clients, name_contains=made.endpoint)["models"] == [(made.model, "")]
    assert delete_endpoint(clients, made.endpoint) == [
        f"deleted endpoint {made.endpoint}", f"deleted endpoint config {made.endpoint_config}",
        f"deleted model {made.model}"]
    assert all("not found" in line for line in delete_endpoint(clients, made.endpoint))
    assert [name for name, _ in list_resources(clients)["endpoints"]] == [other.endpoint]
    assert delete_model(clients, other.model) == f"deleted model {other.model}"
