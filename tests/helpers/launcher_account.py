"""The launcher tier's account: one region, bucket, role, image set and environment for every test that drives
the launcher against moto in this process, and the few questions those tests ask of the account.

tests/launcher/conftest.py builds the accounts on these names (``empty_account``, ``account``, ``model_account``,
``simulated_account``); a test module imports the names it asserts on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from launcher.aws import Clients
from launcher.endpoints.deploy import ServingConfig
from launcher.waiting import Poller
from tests.helpers.moto_sagemaker import run_cli

REGION = "eu-west-1"
BUCKET = "smtx-account"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
#: tagged the way docker/build.sh tags them: the launcher reads cpu / gpu in the tag
CPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1.4-cpu"
GPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1.4-gpu"
#: what a user's shell exports (README): the command line reads its defaults from here
ENV = {"SMTX_SAGEMAKER_ROLE": ROLE, "SMTX_SERVING_IMAGE": CPU_IMAGE, "SMTX_TRAINING_IMAGE": CPU_IMAGE,
       "SMTX_GPU_IMAGE": GPU_IMAGE, "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx"}
#: the stand-in archive model_account and simulated_account hold (add-model names it classif.tar.gz)
MODEL_DATA = f"s3://{BUCKET}/models/classif/output/model.tar.gz"
#: the Python API's serving settings on a GPU instance (the GPU image, as the launcher demands there)
SERVING = ServingConfig(GPU_IMAGE, ROLE, instance_type="ml.g4dn.xlarge", workers=2, batch_size=16,
                        max_batch_delay_ms=20, response_timeout_s=120, model_server_timeout_s=120)
#: an archive the account does not hold
MISSING = f"s3://{BUCKET}/missing/model.tar.gz"
#: a wait that never sleeps (moto answers at once)
INSTANT = Poller(interval_s=0, timeout_s=10, sleep=lambda _: None)
VPC = ["--subnet", "subnet-0abc1234", "--security-group", "sg-0abc1234"]
KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``python -m launcher ARGV`` in this process with ``ENV``: exit status, stdout, stderr (never a traceback)."""
    return run_cli(capsys, ENV, *argv)


def create_bucket(clients: Clients) -> None:
    clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})


def created(clients: Clients) -> dict[str, list[str]]:
    """Everything in the account but its buckets: resources by kind, S3 keys (``{}``: nothing was created)."""
    sm = clients.sagemaker
    found = {
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "endpoint configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "training jobs": [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]],
        "transform jobs": [j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]],
        "objects": [o["Key"] for b in clients.s3.list_buckets()["Buckets"]
                    for o in clients.s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])],
    }
    return {kind: names for kind, names in found.items() if names}


def records_file(tmp_path: Path) -> Path:
    """A one-record jsonlines file."""
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "a"}\n', encoding="utf-8")
    return path


def sagemaker_tags(clients: Clients, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in clients.sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def backend() -> Any:
    """moto's SageMaker state for the account, to play SageMaker's part (a state, a failure reason)."""
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


def stand_in_model(clients: Clients) -> None:
    """The project bucket with a stand-in archive at MODEL_DATA (moto never opens it)."""
    create_bucket(clients)
    clients.s3.put_object(Bucket=BUCKET, Key=MODEL_DATA.split("/", 3)[3], Body=b"stand-in")
