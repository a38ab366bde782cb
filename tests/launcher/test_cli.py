"""The command line end to end against a moto server on 127.0.0.1 (AWS_ENDPOINT_URL points at it)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from launcher.cli import main
from tests.helpers import EXAMPLES, ROOT
from tests.helpers.moto_sagemaker import in_process_moto_server, simulate_sagemaker

REGION = "eu-west-1"
BUCKET = "smtx-cli-test"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
    "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1",
    "SMTX_GPU_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1-gpu",
    "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx",
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with in_process_moto_server() as url:
        yield url


@pytest.fixture
def env(server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    values = {**ENV, "AWS_ENDPOINT_URL": server, "AWS_CONFIG_FILE": str(tmp_path / "no-config")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=server)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    simulate_sagemaker(REGION)
    return values


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["--poll-s", "0", "--timeout-s", "30", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _named(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return match.group(1)


def test_train_deploy_invoke_transform_list_delete(env: dict[str, str], capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    status, out, _ = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif",
                          "--model-name", "sentence-transformers/all-MiniLM-L6-v2", "--max-steps", "10")
    assert status == 0, out
    job = _named(r"training job (smtx-classif-[\w-]+)", out)
    assert f"model artifact: s3://{BUCKET}/smtx/output/{job}/output/model.tar.gz" in out

    status, out, _ = _run(capsys, "deploy", "--training-job", job, "--batch-size", "8", "--workers", "1")
    endpoint = _named(r"endpoint (smtx-ep-[\w-]+) \(config", out)
    assert status == 0 and f"delete --endpoint {endpoint}" in out

    status, out, _ = _run(capsys, "invoke", endpoint, "--text", "great service", "--text", "awful")
    assert status == 0 and [json.loads(line)["pred"] for line in out.splitlines()] == ["positive", "positive"]

    status, out, _ = _run(capsys, "deploy-multi", "--model-prefix", f"s3://{BUCKET}/smtx/mme")
    mme = _named(r"endpoint (smtx-mme-[\w-]+) \(config", out)
    status, out, _ = _run(capsys, "add-model", "--training-job", job, "--model-prefix", f"s3://{BUCKET}/smtx/mme")
    assert status == 0 and f"--target-model {job}.tar.gz" in out
    status, out, _ = _run(capsys, "invoke", mme, "--text", "hi", "--target-model", f"{job}.tar.gz",
                          "--content-type", "jsonlines")
    assert status == 0 and json.loads(out)["model"] == f"{job}.tar.gz"

    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n{"text": 1}\n', encoding="utf-8")
    status, out, _ = _run(capsys, "transform", "--training-job", job, "--input", str(records),
                          "--output", str(tmp_path / "records.out"))
    model = _named(r"created model (smtx-model-[\w-]+) ", out)
    assert status == 0 and "2 output lines for 2 input lines" in out and "line 2: record has no 'text'" in out

    status, out, _ = _run(capsys, "list")
    assert status == 0 and endpoint in out and mme in out and job in out

    status, out, _ = _run(capsys, "delete", "--endpoint", endpoint, "--endpoint", mme, "--model", model)
    assert status == 0 and out.count("deleted ") == 7, out
    assert endpoint not in _run(capsys, "list")[1]


def test_bad_input_exits_2_with_every_problem_named(env: dict[str, str], capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "train.csv").write_text("text\tlabels\nhello\tgreeting\n", encoding="utf-8")
    status, _, err = _run(capsys, "upload", str(folder), "--task", "classif")
    assert status == 2 and "dev.csv: is missing" in err and "test.csv: is missing" in err
    monkeypatch.delenv("SMTX_SAGEMAKER_ROLE")
    status, _, err = _run(capsys, "deploy", "--model-data", f"s3://{BUCKET}/m/model.tar.gz")
    assert status == 2 and "role=None: expected --role or SMTX_SAGEMAKER_ROLE" in err
    status, _, err = _run(capsys, "follow", "smtx-classif-no-such-job")
    assert status == 2 and "AWS error" not in err  # a mistyped name is bad input (issue 23, defect 8)
    assert ("error: training_job='smtx-classif-no-such-job': expected the name of an existing training job "
            "(python -m launcher list shows them)") in err


def test_python_dash_m_launcher_uses_the_environment(env: dict[str, str], tmp_path: Path) -> None:
    child = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "launcher", "upload", str(EXAMPLES / "regression"),
                          "--task", "regression"], capture_output=True, text=True, cwd=tmp_path, env=child,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"s3://{BUCKET}/smtx/regression-regression-")
