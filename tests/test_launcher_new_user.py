"""Regression tests for the defects a new user met trying the launcher (issue 23), each through the command line,
against moto in this process and against a moto server (the issue's defects were found against one).

The promise under test is docs/sagemaker.md's "every setting is checked before anything is created": each bad
input ends with exit status 2, one line naming the flag, the value and what was expected, no traceback, and
nothing in the account -- no model, endpoint config, endpoint, job or S3 object.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
import requests

from launcher.aws import AwsSettings, Clients
from launcher.checks import offered_instance_types
from launcher.cli import build_parser
from tests.helpers import EXAMPLES
from tests.helpers.moto_sagemaker import in_process_moto_server, offline_account, run_cli, write_log_lines

REGION = "eu-west-1"
BUCKET = "smtx-new-user"
ENV = {
    "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
    "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1",
    "SMTX_GPU_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1-gpu",
    "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx",
}
MISSING = f"s3://{BUCKET}/missing/model.tar.gz"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with in_process_moto_server() as url:
        yield url


@pytest.fixture(params=["in-process", "moto-server"])
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    """An account with the project bucket and nothing else, in moto in-process or behind a moto server."""
    if request.param == "in-process":
        with offline_account(monkeypatch, tmp_path, REGION) as clients:
            clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            yield clients
        return
    url = request.getfixturevalue("moto_server")
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    clients = Clients(AwsSettings(region=REGION))
    clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield clients


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, ENV, *argv, timeout_s=10)


def _created(clients: Clients) -> dict[str, list[str]]:
    """Everything in the account but the project bucket itself: resources by kind, S3 keys."""
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


def _records(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "a"}\n', encoding="utf-8")
    return path


# 1. and 2. a model archive that does not exist ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["deploy", "deploy --serverless --memory-mb 2048 --max-concurrency 1",
                                     "deploy --async --output s3://smtx-new-user/async"])
def test_deploy_refuses_a_missing_archive_before_creating_anything(aws: Clients, capsys, command: str) -> None:
    instances = [] if "serverless" in command else ["--instance-type", "ml.m5.xlarge"]
    status, out, err = _run(capsys, *command.split(), "--model-data", MISSING, *instances)
    assert status == 2 and not out
    assert err == (f"error: model_data='{MISSING}': expected an existing archive: bucket '{BUCKET}' has no key "
                   "'missing/model.tar.gz'\n")
    assert _created(aws) == {}


def test_deploy_from_a_job_whose_artifact_is_missing_names_the_job(aws: Clients, capsys) -> None:
    status, out, _ = _run(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--no-wait",
                          "--instance-type", "ml.m5.xlarge")
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    before = _created(aws)
    status, _, err = _run(capsys, "deploy", "--training-job", job, "--instance-type", "ml.m5.xlarge")
    assert status == 2 and f"(the artifact of training job {job})" in err  # moto trains nothing
    assert _created(aws) == before


def test_transform_refuses_a_missing_archive_or_model_before_uploading(aws: Clients, capsys, tmp_path: Path) -> None:
    records = _records(tmp_path)
    status, _, err = _run(capsys, "transform", "--model-data", MISSING, "--input", str(records), "--output",
                          str(tmp_path / "out"), "--instance-type", "ml.m5.xlarge")
    assert status == 2 and f"model_data='{MISSING}': expected an existing archive" in err
    status, _, err = _run(capsys, "transform", "--model", "smtx-model-none", "--input", str(records), "--output",
                          str(tmp_path / "out"), "--instance-type", "ml.m5.xlarge")
    assert status == 2 and "model='smtx-model-none': expected an existing SageMaker model" in err
    assert _created(aws) == {}


# 3. a data prefix without the three files ------------------------------------------------------------------------

@pytest.mark.parametrize("present, missing", [((), "train.csv, dev.csv, test.csv"),
                                              (("train.csv",), "dev.csv, test.csv")])
def test_train_refuses_a_prefix_without_the_three_files(aws: Clients, capsys, present: tuple[str, ...],
                                                        missing: str) -> None:
    for name in present:
        aws.s3.put_object(Bucket=BUCKET, Key=f"data/{name}", Body=b"text\tlabels\n")
    status, _, err = _run(capsys, "train", "--data", f"s3://{BUCKET}/data/", "--task", "classif")
    assert status == 2 and f"data='s3://{BUCKET}/data/': expected an s3:// prefix holding train.csv, dev.csv and " \
                           f"test.csv (missing: {missing};" in err
    assert _created(aws) == ({"objects": [f"data/{n}" for n in present]} if present else {})
    status, _, err = _run(capsys, "train", "--data", "s3://smtx-no-such-bucket/data/", "--task", "classif")
    assert status == 2 and "bucket 'smtx-no-such-bucket' does not exist" in err


# 4. instance types SageMaker does not offer for the job kind ---------------------------------------------------

@pytest.mark.parametrize("argv, kind", [
    (["train", "--data", str(EXAMPLES / "classif"), "--task", "classif"], "training"),
    (["deploy", "--model-data", MISSING], "hosting"),
    (["transform", "--model", "smtx-model-x", "--input", "{records}", "--output", "{out}"], "transform"),
])
@pytest.mark.parametrize("instance_type", ["ml.nonsense.xlarge", "ml.m5.huge"])
def test_an_instance_type_is_checked_against_what_sagemaker_offers(aws: Clients, capsys, tmp_path: Path,
                                                                   argv: list[str], kind: str,
                                                                   instance_type: str) -> None:
    argv = [a.format(records=_records(tmp_path), out=tmp_path / "out") for a in argv]
    status, out, err = _run(capsys, *argv, "--instance-type", instance_type)
    assert status == 2 and not out
    assert f"instance_type='{instance_type}': expected an ml.* instance type SageMaker offers for {kind}" in err
    if instance_type == "ml.m5.huge":  # a known family: its sizes are listed
        assert "ml.m5.xlarge" in err and "families" not in err
    assert _created(aws) == {}


def test_the_offered_instance_types_differ_by_job_kind() -> None:
    # ml.t3 trains but does not host; ml.inf1 hosts but does not train or transform (SageMaker's own lists)
    assert "ml.t3.medium" in offered_instance_types("training")
    assert "ml.t3.medium" not in offered_instance_types("hosting")
    assert "ml.inf1.xlarge" in offered_instance_types("hosting")
    assert "ml.inf1.xlarge" not in offered_instance_types("transform")


# 5. zero instances -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["deploy", "--model-data", MISSING],
    ["deploy-multi", "--model-prefix", f"s3://{BUCKET}/mme"],
    ["transform", "--model-data", MISSING, "--input", "{records}", "--output", "{out}"],
    ["train", "--data", str(EXAMPLES / "classif"), "--task", "classif"],
])
def test_instance_count_0_is_refused_everywhere(aws: Clients, capsys, tmp_path: Path, argv: list[str]) -> None:
    argv = [a.format(records=_records(tmp_path), out=tmp_path / "out") for a in argv]
    status, _, err = _run(capsys, *argv, "--instance-type", "ml.m5.xlarge", "--instance-count", "0")
    assert status == 2 and "error: instance_count=0: expected an integer >= 1" in err
    assert _created(aws) == {}


# 6. a missing bucket: only flags the command takes are suggested --------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["deploy-multi", "--model-prefix", "s3://smtx-no-such-bucket/mme", "--instance-type", "ml.m5.xlarge"],
    ["add-model", "--model-data", MISSING, "--model-prefix", "s3://smtx-no-such-bucket/mme"],
    ["upload", str(EXAMPLES / "classif"), "--task", "classif", "--s3-prefix", "s3://smtx-no-such-bucket/smtx"],
])
def test_a_missing_bucket_message_offers_only_flags_the_command_takes(aws: Clients, capsys,
                                                                      argv: list[str]) -> None:
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "bucket 'smtx-no-such-bucket' (from s3://smtx-no-such-bucket/" in err
    assert f"`aws s3 mb s3://smtx-no-such-bucket --region {REGION}`" in err
    offered = "--create-bucket" in err
    assert offered == (argv[0] == "upload")
    if not offered:  # the flag the message would have offered is indeed refused by this command
        with pytest.raises(SystemExit) as refused:
            build_parser(ENV).parse_args([*argv, "--create-bucket"])
        assert refused.value.code == 2 and "unrecognized arguments: --create-bucket" in capsys.readouterr().err
    assert _created(aws) == {}


# 7. global flags after the command, and a followed log that says what it sees --------------------------------------

def test_timeout_and_poll_are_accepted_after_the_command_and_a_follow_says_what_it_sees(aws: Clients,
                                                                                        capsys) -> None:
    status, out, err = _run(capsys, "logs", "--endpoint", "smtx-ep-x", "--follow", "--timeout-s", "0.2",
                            "--poll-s", "0.05")
    assert status == 0 and out == "no log lines yet; following (Ctrl-C or --timeout-s ends it)\n"
    assert err == "stopped following after 0.2 s (--timeout-s)\n"
    write_log_lines(aws.logs, "/aws/sagemaker/Endpoints/smtx-ep-x", "AllTraffic/i-0abc", ["model loaded", "ready"])
    status, out, _ = _run(capsys, "logs", "--endpoint", "smtx-ep-x", "--follow", "--timeout-s", "0.2")
    assert status == 0 and out == "model loaded\nready\n"
    with pytest.raises(SystemExit) as refused:  # --endpoint is not read as an abbreviation of --endpoint-url
        build_parser(ENV).parse_args(["describe", "--endpoint", "smtx-ep-x"])
    assert refused.value.code == 2 and "unrecognized arguments: --endpoint" in capsys.readouterr().err


# 8. exit codes of unknown names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["follow", "smtx-classif-none"], ["deploy", "--training-job", "smtx-classif-none",
                                                                     "--instance-type", "ml.m5.xlarge"]])
def test_an_unknown_training_job_is_bad_input(aws: Clients, capsys, argv: list[str]) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2 and "AWS error" not in err
    assert err == ("error: training_job='smtx-classif-none': expected the name of an existing training job "
                   "(python -m launcher list shows them)\n")
    assert _created(aws) == {}


def test_delete_of_a_missing_endpoint_is_bad_input_and_deletes_nothing(aws: Clients, capsys) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=b"stand-in")
    status, out, _ = _run(capsys, "deploy", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--instance-type",
                          "ml.m5.xlarge")
    endpoint = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    before = _created(aws)
    status, out, err = _run(capsys, "delete", "--endpoint", endpoint, "--endpoint", "smtx-ep-none")
    assert status == 2 and not out
    assert err == ("error: endpoint='smtx-ep-none': expected an existing endpoint (python -m launcher list shows "
                   "them)\n")
    assert _created(aws) == before  # the existing one was not deleted either
    status, _, err = _run(capsys, "delete", "--model", "smtx-model-none")
    assert status == 2 and "model='smtx-model-none': expected an existing model" in err
    status, out, _ = _run(capsys, "delete", "--endpoint", endpoint)
    assert status == 0 and f"deleted endpoint {endpoint}\n" in out and "not found" not in out


# 10. wording -------------------------------------------------------------------------------------------------------

def test_the_workers_and_jsonlines_messages_read_well(aws: Clients, capsys, tmp_path: Path) -> None:
    status, _, err = _run(capsys, "deploy", "--model-data", MISSING, "--instance-type", "ml.m5.xlarge",
                          "--workers", "0")
    assert status == 2 and "None" not in err
    assert re.fullmatch(r"error: workers=0: expected an integer between 1 and \d+ \(SAGEMAKER_MODEL_SERVER_WORKERS\), "
                        r"or no value, for the container's default\n", err), err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"text": "fine"}) + '\n{"text": "unterminated\n', encoding="utf-8")
    status, _, err = _run(capsys, "invoke", "smtx-ep-x", "--file", str(broken))
    assert status == 2 and " at at " not in err
    assert f"file='{broken}:2': expected one JSON object per line (Unterminated string starting at column 10)" in err
    assert _created(aws) == {}
