"""Account hygiene (tags, VPC, KMS, network isolation), the image for each instance type, GPU batch sizes, and the
commands that look after what exists: logs, describe, list, transform --no-wait / follow / stop, S3 cleanup.
Through the command line against moto in-process, and on the requests where moto drops a field."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

import pytest

from launcher.aws import TRANSFORM_LOG_GROUP, Clients
from launcher.cli import main
from launcher.deploy import ServingConfig, endpoint_config_request, model_request
from launcher.errors import SettingError
from launcher.images import default_batch_sizes, family_of, tagged_cpu
from launcher.placement import Placement, has_local_storage
from launcher.s3_cleanup import confirm
from tests.helpers import EXAMPLES
from tests.helpers.moto_sagemaker import (
    accept_transform_stops,
    offline_account,
    run_cli,
    simulate_sagemaker,
    write_log_lines,
)

REGION = "eu-west-1"
BUCKET = "smtx-hygiene"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
CPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1.4-cpu"
GPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1.4-gpu"
ENV = {"SMTX_SAGEMAKER_ROLE": ROLE, "SMTX_SERVING_IMAGE": CPU_IMAGE, "SMTX_TRAINING_IMAGE": CPU_IMAGE,
       "SMTX_GPU_IMAGE": GPU_IMAGE, "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx"}
MODEL_DATA = f"s3://{BUCKET}/models/model.tar.gz"
VPC = ["--subnet", "subnet-0abc1234", "--security-group", "sg-0abc1234"]
KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        clients.s3.put_object(Bucket=BUCKET, Key="models/model.tar.gz", Body=b"stand-in")
        simulate_sagemaker(REGION)
        accept_transform_stops()
        yield clients


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, ENV, *argv)


def _tags(clients: Clients, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in clients.sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def test_training_gets_tags_vpc_kms_isolation_the_gpu_image_and_t4_batch_sizes(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif",
                            "--max-steps", "10", "--no-wait", "--tag", "team=nlp", "--kms-key", KEY,
                            "--network-isolation", *VPC)
    assert status == 0, err
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    described = aws.sagemaker.describe_training_job(TrainingJobName=job)
    assert described["AlgorithmSpecification"]["TrainingImage"] == GPU_IMAGE  # ml.g4dn.xlarge by default
    assert described["VpcConfig"] == {"Subnets": ["subnet-0abc1234"], "SecurityGroupIds": ["sg-0abc1234"]}
    assert described["EnableNetworkIsolation"] is True
    assert described["OutputDataConfig"]["KmsKeyId"] == KEY
    assert "VolumeKmsKeyId" not in described["ResourceConfig"]  # g4dn: local NVMe, SageMaker refuses a key
    assert described["HyperParameters"]["per_device_train_batch_size"] == "10"  # the embedded MiniLM is a BERT
    assert _tags(aws, described["TrainingJobArn"]) == {"team": "nlp", "smtx:created-by": "smtx-launcher",
                                                       "smtx:command": "train", "smtx:task": "classif"}


def test_cpu_training_keeps_the_training_defaults_and_takes_the_volume_key(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--no-wait",
                          "--instance-type", "ml.m5.xlarge", "--kms-key", KEY, "--per-device-eval-batch-size", "4")
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    described = aws.sagemaker.describe_training_job(TrainingJobName=job)
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
def test_bad_hygiene_or_image_flags_exit_2_before_any_upload(aws: Clients, capsys: pytest.CaptureFixture[str],
                                                             argv: list[str], named: str) -> None:
    status, _, err = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", *argv)
    assert status == 2 and named in err, err
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="smtx/").get("KeyCount", 0) == 0
    assert not aws.sagemaker.list_training_jobs()["TrainingJobSummaries"]


def test_a_gpu_instance_without_a_gpu_image_names_both_ways_out(aws: Clients,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["deploy", "--model-data", MODEL_DATA], env={**ENV, "SMTX_GPU_IMAGE": ""})
    err = capsys.readouterr().err
    assert status == 2 and "--gpu-image or SMTX_GPU_IMAGE for a GPU instance (ml.g4dn.xlarge)" in err
    assert "ml.m5.xlarge" in err
    status = main(["deploy", "--model-data", MODEL_DATA, "--image", "acct/smtx:latest"],
                  env={**ENV, "SMTX_GPU_IMAGE": "", "SMTX_SERVING_IMAGE": "acct/smtx:latest"})
    assert status == 2 and "it is the configured CPU image" in capsys.readouterr().err


def test_the_image_follows_the_instance_type_and_the_tag_convention() -> None:
    assert tagged_cpu("acct.dkr.ecr.eu-west-1.amazonaws.com/smtx:cpu") and tagged_cpu("r/smtx:1.4-cpu-py311")
    assert not tagged_cpu("r/smtx-cpu-builds:1.4") and not tagged_cpu("r/smtx:gpu") and not tagged_cpu("r/smtx")
    assert (family_of("allenai/longformer-base-4096"), family_of("distilbert-base-uncased"),
            family_of("microsoft/layoutlm-base-uncased"), family_of("embedded:all-MiniLM-L6-v2"),
            family_of("roberta-base"), family_of("gpt2")) == (
        "longformer", "distilbert", "layoutlm", "bert", "roberta", None)
    assert default_batch_sizes("allenai/longformer-base-4096", "ml.g4dn.2xlarge") == {
        "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1}
    assert default_batch_sizes("bert-base-cased", "ml.m5.xlarge") == {}
    assert [has_local_storage(t) for t in ("ml.g4dn.xlarge", "ml.m5d.large", "ml.g5.xlarge", "ml.m5.xlarge",
                                           "ml.p3.2xlarge")] == [True, True, True, False, False]


def test_models_and_endpoint_configs_carry_isolation_vpc_tags_and_keys() -> None:
    # moto drops EnableNetworkIsolation on CreateModel: asserted on the request the launcher sends
    config = ServingConfig(GPU_IMAGE, ROLE, instance_type="ml.p3.2xlarge", placement=Placement(
        tags={"team": "nlp"}, subnets=("subnet-0abc1234",), security_groups=("sg-0abc1234",), kms_key=KEY,
        network_isolation=True))
    model = model_request("m", config, {"ModelDataUrl": MODEL_DATA}, "deploy")
    assert model["EnableNetworkIsolation"] is True and model["VpcConfig"]["Subnets"] == ["subnet-0abc1234"]
    assert {"Key": "smtx:command", "Value": "deploy"} in model["Tags"]
    assert endpoint_config_request("c", "m", config, "deploy")["KmsKeyId"] == KEY
    with pytest.raises(SettingError, match="CPU image"):
        ServingConfig(CPU_IMAGE, ROLE, instance_type="ml.g4dn.xlarge")


def test_transform_no_wait_then_follow_and_stop(aws: Clients, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, out, _ = _run(capsys, "transform", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge",
                          "--input", str(records), "--output", str(tmp_path / "nowhere" / "out"), "--no-wait",
                          "--tag", "team=nlp", "--kms-key", KEY)
    assert status == 0 and "follow with: python -m launcher follow-transform smtx-transform-" in out, out
    job = re.search(r"transform job (\S+):", out).group(1)  # type: ignore[union-attr]
    described = aws.sagemaker.describe_transform_job(TransformJobName=job)
    assert described["TransformOutput"]["KmsKeyId"] == KEY
    assert _tags(aws, described["TransformJobArn"])["smtx:command"] == "transform"
    write_log_lines(aws.logs, TRANSFORM_LOG_GROUP, f"{job}/i-0abc-1700000000", ["loaded model", "200 OK"])
    status, out, _ = _run(capsys, "follow-transform", job)
    assert status == 0 and "loaded model\n200 OK" in out and f"transform job {job}: Completed" in out
    assert _run(capsys, "logs", "--transform-job", job)[1] == "loaded model\n200 OK\n"
    status, out, _ = _run(capsys, "stop-transform", job)
    assert status == 0 and f"asked {job} to stop" in out
    status, _, err = _run(capsys, "follow-transform", job)
    assert status == 1 and f"transform job {job} ended Stopped" in err


def test_logs_describe_and_list_show_what_serves(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "deploy", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge", "--instance-count",
               "2", "--tag", "team=nlp")[1]
    name = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    assert _run(capsys, "logs", "--endpoint", name)[:2] == (0, "no log lines yet\n")
    write_log_lines(aws.logs, f"/aws/sagemaker/Endpoints/{name}", "AllTraffic/i-0abc", ["model loaded"])
    status, out, _ = _run(capsys, "logs", "--endpoint", name, "--follow")  # bounded by --timeout-s
    assert status == 0 and out == "model loaded\n"
    status, out, _ = _run(capsys, "describe", name)
    assert status == 0 and f"endpoint {name}: InService" in out and "ml.m5.xlarge x2" in out
    assert "autoscaling: none" in out and "team=nlp" in out and "smtx:command=deploy" in out
    status, _, err = _run(capsys, "describe", "smtx-ep-missing")
    assert status == 2 and "endpoint='smtx-ep-missing': expected an existing endpoint" in err
    status, out, _ = _run(capsys, "list")
    row = next(line for line in out.splitlines() if line.strip().startswith(name) and "InService" in line)
    assert re.search(r"InService\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+ml\.m5\.xlarge x2", row), row


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cleanup_deletes_only_what_the_launcher_wrote_and_asks_first(aws: Clients,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(capsys, "upload", str(EXAMPLES / "classif"), "--task", "classif")[0] == 0
    keep = ["smtx/output/smtx-classif-20260101-120000-1a2b3c4d/output/model.tar.gz", "smtx/mme/a.tar.gz",
            "smtx/notes-by-hand.txt"]
    for key in keep + ["smtx/smtx-transform-20260101-120000-1a2b3c4d/input/r.jsonl",
                       "smtx/async-input/smtx-async-20260101-120000-1a2b3c4d/r.jsonl"]:
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # CI: no terminal
    status, out, err = _run(capsys, "cleanup")
    assert status == 2 and "pass --yes" in err and out.count(f"s3://{BUCKET}/smtx/") == 3
    status, out, _ = _run(capsys, "cleanup", "--dry-run")
    assert status == 0 and "nothing deleted" in out
    status, out, _ = _run(capsys, "cleanup", "--yes")
    assert status == 0 and "deleted 5 objects" in out  # three data files, one transform input, one async input
    left = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="smtx/")["Contents"])
    assert left == sorted(keep)
    assert not confirm("delete?", False, _Terminal(), ask=lambda _: "n")
    assert confirm("delete?", False, _Terminal(), ask=lambda _: "y")


def _object_tags(clients: Clients) -> dict[str, dict[str, str]]:
    """key -> tags of every object the launcher wrote: not the fixture's stand-in archive, nor what SageMaker's
    stand-ins write (transform and async answers)."""
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    ours = [key for key in keys if key != "models/model.tar.gz" and "/output/" not in key
            and not key.startswith("smtx/async-out/")]
    return {key: {t["Key"]: t["Value"] for t in clients.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}
            for key in ours}


def test_every_s3_object_the_launcher_writes_is_tagged_like_its_resources(
        aws: Clients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Issue 23, account hygiene: upload, train's data, transform's input, invoke-async's input and add-model's
    copy carry smtx:created-by, smtx:command and the --tag tags, as the jobs and models do."""
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    out = _run(capsys, "deploy", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge", "--async",
               "--output", f"s3://{BUCKET}/smtx/async-out")[1]
    endpoint = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    runs = {
        "upload": ["upload", str(EXAMPLES / "classif"), "--task", "classif", "--tag", "team=nlp"],
        "train": ["train", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--no-wait", "--instance-type",
                  "ml.m5.xlarge", "--tag", "team=nlp", "--tag", "cost centre=42"],
        "transform": ["transform", "--model-data", MODEL_DATA, "--input", str(records), "--output",
                      str(tmp_path / "out"), "--instance-type", "ml.m5.xlarge", "--tag", "team=nlp"],
        "invoke-async": ["invoke-async", endpoint, "--input", str(records), "--tag", "team=nlp"],
        "add-model": ["add-model", "--model-data", MODEL_DATA, "--model-prefix", f"s3://{BUCKET}/smtx/mme",
                      "--tag", "team=nlp"],
    }
    written: dict[str, dict[str, dict[str, str]]] = {}
    for command, argv in runs.items():
        before = set(_object_tags(aws))
        assert _run(capsys, *argv)[0] in (0, 1), command  # moto's transform writes no output: exit 1
        written[command] = {k: v for k, v in _object_tags(aws).items() if k not in before}
    expected_keys = {"upload": 3, "train": 3, "transform": 1, "invoke-async": 1, "add-model": 1}
    assert {command: len(objects) for command, objects in written.items()} == expected_keys, written
    for command, objects in written.items():
        extra = {"cost centre": "42"} if command == "train" else {}
        for key, tags in objects.items():
            assert tags == {"team": "nlp", **extra, "smtx:created-by": "smtx-launcher", "smtx:command": command}, key
    # S3 takes 10 tags an object: more is refused before anything is written or created
    many = [f"--tag=k{i}=v" for i in range(9)]
    status, _, err = _run(capsys, *runs["transform"], *many)
    assert status == 2 and "tag=10: expected at most 8 tags where the command writes to S3" in err
    assert len(aws.sagemaker.list_models()["Models"]) == 2  # the endpoint's and the first transform's
