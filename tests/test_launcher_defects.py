"""Regression tests for the defects a new user met (issue 12), each through the command line, moto in-process.

Every bad input ends with exit status 2, one line naming the flag, the value and what was expected, no
traceback, and nothing created in the account (no bucket, S3 object, model or job).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import requests

from launcher.aws import Clients
from launcher.cli import main
from launcher.invoke import read_records
from tests.helpers import EXAMPLES
from tests.helpers.moto_sagemaker import offline_account, run_cli

REGION = "eu-west-1"
BUCKET = "smtx-defects"
ENV = {
    "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
    "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1",
    "SMTX_GPU_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1-gpu",
    "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx",
}
#: moto's own API for queueing invoke_endpoint answers, intercepted in-process by mock_aws
MOTO_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    """moto in-process, an empty account (no bucket yet), and clients on it."""
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        yield clients


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, ENV, *argv, timeout_s=10)


def _nothing_created(clients: Clients) -> bool:
    sm = clients.sagemaker
    buckets = clients.s3.list_buckets()["Buckets"]
    keys = sum(clients.s3.list_objects_v2(Bucket=b["Name"]).get("KeyCount", 0) for b in buckets)
    return keys == 0 and not (sm.list_models()["Models"] or sm.list_training_jobs()["TrainingJobSummaries"]
                              or sm.list_transform_jobs()["TransformJobSummaries"])


def _bucket(clients: Clients) -> None:
    clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})


# 1. a bucket that does not exist ----------------------------------------------------------------------------

def test_upload_to_a_missing_bucket_says_how_to_create_it_or_creates_it(aws: Clients, capsys) -> None:
    status, _, err = _run(capsys, "upload", str(EXAMPLES / "regression"), "--task", "regression")
    assert status == 2 and _nothing_created(aws) and not aws.s3.list_buckets()["Buckets"]
    assert f"bucket '{BUCKET}' (from s3://{BUCKET}/smtx/regression-regression-" in err
    assert f"`aws s3 mb s3://{BUCKET} --region {REGION}`, or pass --create-bucket" in err
    status, out, _ = _run(capsys, "upload", str(EXAMPLES / "regression"), "--task", "regression",
                          "--create-bucket")
    assert status == 0 and out.startswith(f"created bucket {BUCKET}\ns3://{BUCKET}/smtx/regression-regression-")
    assert aws.s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3


# 2. missing files -------------------------------------------------------------------------------------------

def test_missing_files_exit_2_with_the_flag_named(aws: Clients, capsys, tmp_path: Path) -> None:
    missing = tmp_path / "records.jsonl"
    status, _, err = _run(capsys, "invoke", "smtx-ep-x", "--file", str(missing))
    assert status == 2 and f"error: file='{missing}': expected an existing file (nothing at {missing})" in err
    _bucket(aws)
    status, _, err = _run(capsys, "transform", "--model", "smtx-model-x", "--input", str(missing),
                          "--output", str(tmp_path / "out"))
    assert status == 2 and f"error: input='{missing}': expected an existing file" in err
    status, _, err = _run(capsys, "upload", str(tmp_path / "no-such-folder"), "--task", "ner")
    assert status == 2 and "expected an existing folder with train.csv, dev.csv and test.csv" in err


# 3. everything is checked before anything is created ----------------------------------------------------------

def test_transform_from_a_training_job_checks_its_input_before_creating_a_model(aws: Clients, capsys,
                                                                                 tmp_path: Path) -> None:
    _bucket(aws)
    status, _, err = _run(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz",
                          "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out"))
    assert status == 2 and "input=" in err and _nothing_created(aws)
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, _, err = _run(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--input",
                          str(records), "--output", str(tmp_path / "out"), "--instance-type", "g4dn.xlarge")
    assert status == 2 and "instance_type='g4dn.xlarge'" in err and _nothing_created(aws)


@pytest.mark.parametrize("flags, named", [
    (["--instance-type", "p3.2xlarge"], "instance_type='p3.2xlarge': expected an ml.* instance type"),
    (["--max-wait-s", "7200"], "max_wait_s=7200: expected no value unless spot is on"),
    (["--spot", "--max-wait-s", "60"], "max_wait_s=60: expected seconds in [max_runtime_s (86400)"),
    (["--volume-gb", "0"], "volume_gb=0: expected an integer in [1, 16384]"),
    (["--learning-rate", "-1"], "learning_rate=-1.0 is too small; expected at least 0.0"),
])
def test_train_checks_its_settings_before_uploading_the_data(aws: Clients, capsys, flags: list[str],
                                                             named: str) -> None:
    _bucket(aws)
    status, out, err = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", *flags)
    assert status == 2 and named in err and "uploaded" not in out
    assert _nothing_created(aws)


def test_train_into_a_missing_bucket_uploads_nothing(aws: Clients, capsys) -> None:
    status, _, err = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif")
    assert status == 2 and "or pass --create-bucket" in err and not aws.s3.list_buckets()["Buckets"]


# 4. --model-data is a URI, --training-job a name ---------------------------------------------------------------

def test_a_model_data_without_s3_is_not_read_as_a_training_job(aws: Clients, capsys) -> None:
    status, _, err = _run(capsys, "deploy", "--model-data", "my-bucket/smtx/model.tar.gz")
    assert status == 2 and "Could not find training job" not in err
    assert ("error: model_data='my-bucket/smtx/model.tar.gz': expected the s3://bucket/key URI of a model.tar.gz "
            "(for a training job, use --training-job)") in err
    status, _, err = _run(capsys, "add-model", "--training-job", "my-bucket/job", "--model-prefix", "s3://b/mme")
    assert status == 2 and "training_job='my-bucket/job': expected the name of a training job" in err
    assert _nothing_created(aws)


# 5. jsonlines errors name their line ----------------------------------------------------------------------------

def test_a_broken_jsonlines_line_is_reported_with_its_own_number(tmp_path: Path, capsys) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken"\n\n[1]\n', encoding="utf-8")
    with pytest.raises(Exception, match=rf"file='{path}:2': expected one JSON object per line \(Expecting"):
        read_records(path)
    path.write_text('{"text": "fine"}\n\n[1]\n', encoding="utf-8")
    status = main(["invoke", "ep", "--file", str(path)], env=ENV)
    assert status == 2 and f"{path}:3=[1]: expected a JSON object" in capsys.readouterr().err


# 6. a missing artifact is named ---------------------------------------------------------------------------------

def test_add_model_names_the_missing_key(aws: Clients, capsys) -> None:
    _bucket(aws)
    status, _, err = _run(capsys, "add-model", "--model-data", f"s3://{BUCKET}/models/none/model.tar.gz",
                          "--model-prefix", f"s3://{BUCKET}/mme")
    assert status == 2 and "404" not in err
    assert f"bucket '{BUCKET}' has no key 'models/none/model.tar.gz'" in err


# 10. invoke: records answered with an error make the command fail, unless allowed --------------------------

def _queue(*bodies: str) -> None:
    results = [{"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic",
                "CustomAttributes": ""} for body in bodies]
    requests.post(MOTO_RESULTS, json={"region": REGION, "results": results}, timeout=10).raise_for_status()


def test_invoke_exits_1_when_a_record_is_answered_with_an_error(aws: Clients, capsys) -> None:
    answer = json.dumps({"predictions": [{"pred": "positive"}, {"error": "text is empty"}]})
    _queue(answer, answer)
    status, out, err = _run(capsys, "invoke", "smtx-ep-x", "--text", "good", "--text", " ")
    assert status == 1 and out.splitlines() == ['{"pred": "positive"}', '{"error": "text is empty"}']
    assert "1 of 2 records were answered with an error (records 2); pass --allow-errors" in err
    status, out, _ = _run(capsys, "invoke", "smtx-ep-x", "--text", "good", "--text", "  ", "--allow-errors")
    assert status == 0 and len(out.splitlines()) == 2


def test_a_transform_that_wrote_nothing_says_so(aws: Clients, capsys, tmp_path: Path) -> None:
    _bucket(aws)
    aws.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=b"stand-in")
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, _, err = _run(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--input",
                          str(records), "--output", str(tmp_path / "out"))
    assert status == 1 and "is Completed but wrote no s3://" in err and "/records.jsonl.out" in err


# 8. labels that do not fit the task ------------------------------------------------------------------------------

def test_ner_labels_are_refused_for_classif_before_upload(aws: Clients, capsys, tmp_path: Path) -> None:
    _bucket(aws)
    folder = shutil.copytree(EXAMPLES / "ner", tmp_path / "ner")
    status, _, err = _run(capsys, "upload", str(folder), "--task", "classif")
    assert status == 2 and "train.csv, line 2, column labels" in err and _nothing_created(aws)
