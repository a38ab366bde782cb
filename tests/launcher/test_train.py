"""upload, train, follow and stop-training: clients, data upload, training jobs and following them against moto
in-process (the Python API), and through the command line: every setting checked before the data is uploaded,
tags, VPC, KMS and the image per instance type on the job."""
from __future__ import annotations

import re
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
from launcher.errors import SettingError, WaitTimeout
from launcher.jobs.data import upload_dataset
from launcher.jobs.follow import follow_training_job
from launcher.jobs.hyperparameters import Hyperparameters
from launcher.jobs.metrics import metric_definitions
from launcher.jobs.training import TrainingConfig, start_training_job, stop_training_job
from launcher.logs import LogTail
from launcher.waiting import Poller
from tests.helpers import EXAMPLES
from tests.helpers.launcher_account import (
    BUCKET,
    CPU_IMAGE,
    GPU_IMAGE,
    KEY,
    REGION,
    ROLE,
    VPC,
    cli,
    create_bucket,
    created,
    sagemaker_tags,
)
from tests.helpers.moto_sagemaker import Step, TrainingJobDriver
from training.data import DataError


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


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
def test_upload_to_a_missing_bucket_says_how_to_create_it_or_creates_it(empty_account: Clients, capsys) -> None:
    """Issue 12, defect 1: a bucket that does not exist."""
    status, _, err = cli(capsys, "upload", str(EXAMPLES / "regression"), "--task", "regression")
    assert status == 2 and not created(empty_account) and not empty_account.s3.list_buckets()["Buckets"]
    assert f"bucket '{BUCKET}' (from s3://{BUCKET}/smtx/regression-regression-" in err
    assert f"`aws s3 mb s3://{BUCKET} --region {REGION}`, or pass --create-bucket" in err
    status, out, _ = cli(capsys, "upload", str(EXAMPLES / "regression"), "--task", "regression",
                         "--create-bucket")
    assert status == 0 and out.startswith(f"created bucket {BUCKET}\ns3://{BUCKET}/smtx/regression-regression-")
    assert empty_account.s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION
    assert empty_account.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3


@pytest.mark.parametrize("flags, named", [
    (["--instance-type", "p3.2xlarge"], "instance_type='p3.2xlarge': expected an ml.* instance type"),
    (["--max-wait-s", "7200"], "max_wait_s=7200: expected no value unless spot is on"),
    (["--spot", "--max-wait-s", "60"], "max_wait_s=60: expected seconds in [max_runtime_s (86400)"),
    (["--volume-gb", "0"], "volume_gb=0: expected an integer in [1, 16384]"),
    (["--learning-rate", "-1"], "learning_rate=-1.0 is too small; expected at least 0.0"),
])
def test_train_checks_its_settings_before_uploading_the_data(empty_account: Clients, capsys, flags: list[str],
                                                             named: str) -> None:
    """Issue 12, defect 3: everything is checked before anything is created."""
    create_bucket(empty_account)
    status, out, err = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", *flags)
    assert status == 2 and named in err and "uploaded" not in out
    assert not created(empty_account)


def test_train_into_a_missing_bucket_uploads_nothing(empty_account: Clients, capsys) -> None:
    """Issue 12, defect 3: everything is checked before anything is created."""
    status, _, err = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif")
    assert status == 2 and "or pass --create-bucket" in err and not empty_account.s3.list_buckets()["Buckets"]


def test_ner_labels_are_refused_for_classif_before_upload(empty_account: Clients, capsys, tmp_path: Path) -> None:
    """Issue 12, defect 8: labels that do not fit the task."""
    create_bucket(empty_account)
    folder = shutil.copytree(EXAMPLES / "ner", tmp_path / "ner")
    status, _, err = cli(capsys, "upload", str(folder), "--task", "classif")
    assert status == 2 and "train.csv, line 2, column labels" in err and not created(empty_account)


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
@pytest.mark.parametrize("present, missing", [((), "train.csv, dev.csv, test.csv"),
                                              (("train.csv",), "dev.csv, test.csv")])
def test_train_refuses_a_prefix_without_the_three_files(account: Clients, capsys, present: tuple[str, ...],
                                                        missing: str) -> None:
    """Issue 23, defect 3: a data prefix without the three files."""
    for name in present:
        account.s3.put_object(Bucket=BUCKET, Key=f"data/{name}", Body=b"text\tlabels\n")
    status, _, err = cli(capsys, "train", "--data", f"s3://{BUCKET}/data/", "--task", "classif")
    assert status == 2 and f"data='s3://{BUCKET}/data/': expected an s3:// prefix holding train.csv, dev.csv and " \
                           f"test.csv (missing: {missing};" in err
    assert created(account) == ({"objects": [f"data/{n}" for n in present]} if present else {})
    status, _, err = cli(capsys, "train", "--data", "s3://smtx-no-such-bucket/data/", "--task", "classif")
    assert status == 2 and "bucket 'smtx-no-such-bucket' does not exist" in err


@pytest.mark.parametrize("argv", [["follow", "smtx-classif-none"], ["deploy", "--training-job", "smtx-classif-none",
                                                                     "--instance-type", "ml.m5.xlarge"]])
def test_an_unknown_training_job_is_bad_input(account: Clients, capsys, argv: list[str]) -> None:
    """Issue 23, defect 8: exit codes of unknown names."""
    status, out, err = cli(capsys, *argv)
    assert status == 2 and "AWS error" not in err
    assert err == ("error: training_job='smtx-classif-none': expected the name of an existing training job "
                   "(python -m launcher list shows them)\n")
    assert created(account) == {}


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def test_training_gets_tags_vpc_kms_isolation_the_gpu_image_and_t4_batch_sizes(
        simulated_account: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif",
                           "--max-steps", "10", "--no-wait", "--tag", "team=nlp", "--kms-key", KEY,
                            "--network-isolation", *VPC)
    assert status == 0, err
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    described = simulated_account.sagemaker.describe_training_job(TrainingJobName=job)
    assert described["AlgorithmSpecification"]["TrainingImage"] == GPU_IMAGE  # ml.g4dn.xlarge by default
    assert described["VpcConfig"] == {"Subnets": ["subnet-0abc1234"], "SecurityGroupIds": ["sg-0abc1234"]}
    assert described["EnableNetworkIsolation"] is True
    assert described["OutputDataConfig"]["KmsKeyId"] == KEY
    assert "VolumeKmsKeyId" not in described["ResourceConfig"]  # g4dn: local NVMe, SageMaker refuses a key
    assert described["HyperParameters"]["per_device_train_batch_size"] == "10"  # the embedded MiniLM is a BERT
    assert sagemaker_tags(simulated_account, described["TrainingJobArn"]) == {
        "team": "nlp", "smtx:created-by": "smtx-launcher", "smtx:command": "train", "smtx:task": "classif"}


def test_cpu_training_keeps_the_training_defaults_and_takes_the_volume_key(
        simulated_account: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--no-wait",
                         "--instance-type", "ml.m5.xlarge", "--kms-key", KEY, "--per-device-eval-batch-size", "4")
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    described = simulated_account.sagemaker.describe_training_job(TrainingJobName=job)
    assert described["AlgorithmSpecification"]["TrainingImage"] == CPU_IMAGE
    assert described["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert "per_device_train_batch_size" not in described["HyperParameters"]
    assert described["HyperParameters"]["per_device_eval_batch_size"] == "4"


@pytest.mark.parametrize("argv, named", [
    (["--image", CPU_IMAGE], "is a CPU image (its tag says cpu) and ml.g4dn.xlarge is a GPU instance"),
    (["--tag", "novalue"], "tag='novalue': expected key=value"),
    (["--tag", "smtx:command=x"], "not starting with aws: or smtx: (reserved)"),
    (["--subnet", "subnet-0abc1234"], "--subnet and --security-group together"),
    (["--subnet", "net-1", "--security-group", "sg-0abc1234"], "subnet='net-1': expected a subnet id"),
    (["--kms-key", "my key"], "kms_key='my key': expected a KMS key id, key ARN, alias/NAME"),
])
def test_bad_hygiene_or_image_flags_exit_2_before_any_upload(simulated_account: Clients,
                                                             capsys: pytest.CaptureFixture[str],
                                                             argv: list[str], named: str) -> None:
    status, _, err = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", *argv)
    assert status == 2 and named in err, err
    assert simulated_account.s3.list_objects_v2(Bucket=BUCKET, Prefix="smtx/").get("KeyCount", 0) == 0
    assert not simulated_account.sagemaker.list_training_jobs()["TrainingJobSummaries"]
