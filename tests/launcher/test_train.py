"""Clients, data upload, training jobs and following them, against moto in-process (mock_aws)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from launcher.aws import TRAINING_LOG_GROUP, AwsSettings, Clients
from launcher.data import upload_dataset
from launcher.errors import SettingError, WaitTimeout
from launcher.follow import follow_training_job
from launcher.hyperparameters import Hyperparameters
from launcher.logs import LogTail
from launcher.metrics import metric_definitions
from launcher.training import TrainingConfig, start_training_job, stop_training_job
from launcher.waiting import Poller
from tests.helpers import EXAMPLES
from tests.helpers.moto_sagemaker import Step, TrainingJobDriver
from training.data import DataError

REGION = "eu-west-1"
BUCKET = "smtx-launcher-test"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and no ambient AWS configuration."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def clients(aws_env: None) -> Iterator[Clients]:
    with mock_aws():
        made = Clients(AwsSettings(region=REGION))
        made.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield made


def _config(**hyperparameters: Any) -> TrainingConfig:
    hp = Hyperparameters(**{"task_name": "classif", "model_name": "distilbert-base-uncased", **hyperparameters})
    return TrainingConfig(image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1", role_arn=ROLE,
                          data_uri=f"s3://{BUCKET}/data/", output_uri=f"s3://{BUCKET}/output", hyperparameters=hp)


def _instant(driver: TrainingJobDriver | None = None, timeout_s: float = 10.0) -> Poller:
    return Poller(interval_s=0, timeout_s=timeout_s, sleep=driver.sleep if driver else (lambda _: None))


def test_clients_honour_aws_endpoint_url_and_refuse_a_missing_region(aws_env: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    made = Clients(AwsSettings(region=REGION))
    assert {c.meta.endpoint_url for c in (made.sagemaker, made.runtime, made.s3, made.logs)} == {
        "http://127.0.0.1:5999"}
    assert made.sagemaker.meta.region_name == REGION
    assert Clients(AwsSettings(region=REGION, endpoint_url="http://localhost:1")).s3.meta.endpoint_url == (
        "http://localhost:1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert Clients().region == "us-west-2"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # botocore alone ignores it; the AWS CLI reads it first
    assert Clients().region == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(SettingError, match="region"):
        Clients()


def test_upload_validates_first_then_uploads_the_three_files(clients: Clients) -> None:
    uploaded = upload_dataset(clients, EXAMPLES / "classif", "classif", f"s3://{BUCKET}/data")
    assert uploaded.rows == {"train": 240, "dev": 60, "test": 60}
    assert uploaded.uri.startswith(f"s3://{BUCKET}/data/classif-classif-") and uploaded.uri.endswith("/")
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["dev.csv", "test.csv", "train.csv"]


def test_a_bad_file_fails_on_the_laptop_and_uploads_nothing(clients: Clients, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(EXAMPLES / "ner", folder)
    lines = (folder / "dev.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tO O"  # wrong number of labels for the words
    (folder / "dev.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev.csv, line 4, column labels"):
        upload_dataset(clients, folder, "ner", f"s3://{BUCKET}/data")
    assert clients.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_the_training_job_is_created_with_string_hyperparameters_and_our_metric_regexes(clients: Clients) -> None:
    sent: dict[str, Any] = {}
    clients.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateTrainingJob",
                                           lambda params, **_: sent.update(params))
    name = start_training_job(clients, _config(max_steps=20, learning_rate=3e-5, use_bbox=False))
    assert name.startswith("smtx-classif-") and len(name) <= 63
    job = clients.sagemaker.describe_training_job(TrainingJobName=name)
    assert job["HyperParameters"] == {"task_name": "classif", "model_name": "distilbert-base-uncased",
                                      "max_steps": "20", "learning_rate": "3e-05", "use_bbox": "false"}
    assert job["RoleArn"] == ROLE
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/data/"
    # moto replaces MetricDefinitions with its own, so check what was sent
    assert sent["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions("classif")
    assert start_training_job(clients, _config()) != name


def _completed_run() -> list[Step]:
    return [
        Step("InProgress", "Downloading", "Downloading input data"),
        Step("InProgress", "Training", "Training image download completed. Training in progress.",
             log_lines=["step 10 train_loss=0.693100;", "dev_accuracy=0.700000;", "dev_f1_macro=0.650000;"]),
        Step("InProgress", "Uploading", "Uploading generated training model",
             log_lines=["test_accuracy=0.690000;", "test_f1_macro=nan;"]),
        Step("Completed", "Completed", "Training job completed", final_metrics={"dev_accuracy": 0.7}),
    ]


def test_following_a_job_shows_transitions_log_lines_then_metrics_and_artifact(clients: Clients) -> None:
    name = start_training_job(clients, _config())
    driver = TrainingJobDriver(name, _completed_run(), clients.logs, REGION)
    driver.start()
    shown: list[str] = []
    result = follow_training_job(clients, name, _instant(driver), emit=shown.append)
    assert result.ok and result.status == "Completed"
    assert result.model_artifact == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    assert result.metrics["train_loss"] == pytest.approx(0.6931)
    assert result.metrics["test_accuracy"] == pytest.approx(0.69)
    statuses = [line for line in shown if line.startswith("status: ")]
    assert statuses[:3] == ["status: Downloading - Downloading input data", "status: InProgress",
                            "status: Training - Training image download completed. Training in progress."]
    assert statuses[-1] == "status: Completed"
    assert shown.index("dev_accuracy=0.700000;") < shown.index("status: Uploading - Uploading generated training "
                                                                "model")
    assert "model artifact: s3://" in result.describe() and "test_f1_macro=nan" in result.describe()


def test_a_failed_job_reports_its_failure_reason(clients: Clients) -> None:
    name = start_training_job(clients, _config())
    reason = "AlgorithmError: DataError: invalid training data: train.csv, line 3, column labels"
    driver = TrainingJobDriver(name, [
        Step("InProgress", "Training", "Training in progress", log_lines=["Traceback (most recent call last):"]),
        Step("Failed", "Failed", "Training job failed", failure_reason=reason),
    ], clients.logs, REGION)
    driver.start()
    shown: list[str] = []
    result = follow_training_job(clients, name, _instant(driver), emit=shown.append)
    assert not result.ok and result.status == "Failed" and result.model_artifact is None
    assert result.failure_reason == reason and f"failure reason: {reason}" in shown
    assert "Traceback (most recent call last):" in shown


def test_a_stopped_job_ends_the_wait_and_a_stuck_one_times_out(clients: Clients) -> None:
    name = start_training_job(clients, _config())
    TrainingJobDriver(name, [Step("Stopped", "Stopped", "Training job stopped")], clients.logs, REGION).start()
    assert follow_training_job(clients, name, _instant(), emit=lambda _: None).status == "Stopped"
    stuck = start_training_job(clients, _config())
    TrainingJobDriver(stuck, [Step("InProgress", "Training")], clients.logs, REGION).start()
    with pytest.raises(WaitTimeout, match=stuck):
        follow_training_job(clients, stuck, _instant(timeout_s=0.05), emit=lambda _: None)


def test_stop_training_job_sends_the_job_name(clients: Clients) -> None:
    # moto has no StopTrainingJob, so stub this one call
    with Stubber(clients.sagemaker) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": "smtx-classif-1"})
        stop_training_job(clients, "smtx-classif-1")
        stub.assert_no_pending_responses()


def test_log_lines_of_several_instances_are_tagged_with_their_host(clients: Clients) -> None:
    clients.logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    now = int(time.time() * 1000)  # CloudWatch (and moto) drop events older than 14 days
    for host in ("algo-1", "algo-2"):
        stream = f"job-x/{host}-1700000000"
        clients.logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
        clients.logs.put_log_events(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream,
                                    logEvents=[{"timestamp": now + i, "message": f"{host} line {i}"}
                                               for i in range(3)])
    tail = LogTail(clients.logs, TRAINING_LOG_GROUP, "job-x/")
    first = tail.poll()
    assert first[0] == "[algo-1] algo-1 line 0" and first[-1] == "[algo-2] algo-2 line 2" and len(first) == 6
    assert tail.poll() == []
    assert LogTail(clients.logs, "/aws/sagemaker/Nothing", "x/").poll() == []


def test_moto_backend_is_the_one_the_driver_changes(clients: Clients) -> None:
    name = start_training_job(clients, _config())
    assert name in sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs
