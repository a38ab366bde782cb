"""What every command shares: settings checked against what SageMaker offers before anything is created
(instance types, counts, buckets, files), the wording of those refusals, and the tags on all it writes to S3."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from launcher.aws import Clients
from launcher.checks import offered_instance_types
from launcher.cli import build_parser
from tests.helpers import EXAMPLES
from tests.helpers.launcher_account import (
    BUCKET,
    ENV,
    MISSING,
    MODEL_DATA,
    REGION,
    cli,
    create_bucket,
    created,
    records_file,
)


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
def test_missing_files_exit_2_with_the_flag_named(empty_account: Clients, capsys, tmp_path: Path) -> None:
    """Issue 12, defect 2: missing files."""
    missing = tmp_path / "records.jsonl"
    status, _, err = cli(capsys, "invoke", "smtx-ep-x", "--file", str(missing))
    assert status == 2 and f"error: file='{missing}': expected an existing file (nothing at {missing})" in err
    create_bucket(empty_account)
    status, _, err = cli(capsys, "transform", "--model", "smtx-model-x", "--input", str(missing),
                         "--output", str(tmp_path / "out"))
    assert status == 2 and f"error: input='{missing}': expected an existing file" in err
    status, _, err = cli(capsys, "upload", str(tmp_path / "no-such-folder"), "--task", "ner")
    assert status == 2 and "expected an existing folder with train.csv, dev.csv and test.csv" in err


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
@pytest.mark.parametrize("argv, kind", [
    (["train", "--data", str(EXAMPLES / "classif"), "--task", "classif"], "training"),
    (["deploy", "--model-data", MISSING], "hosting"),
    (["transform", "--model", "smtx-model-x", "--input", "{records}", "--output", "{out}"], "transform"),
])
@pytest.mark.parametrize("instance_type", ["ml.nonsense.xlarge", "ml.m5.huge"])
def test_an_instance_type_is_checked_against_what_sagemaker_offers(account: Clients, capsys, tmp_path: Path,
                                                                   argv: list[str], kind: str,
                                                                   instance_type: str) -> None:
    """Issue 23, defect 4: instance types SageMaker does not offer for the job kind."""
    argv = [a.format(records=records_file(tmp_path), out=tmp_path / "out") for a in argv]
    status, out, err = cli(capsys, *argv, "--instance-type", instance_type)
    assert status == 2 and not out
    assert f"instance_type='{instance_type}': expected an ml.* instance type SageMaker offers for {kind}" in err
    if instance_type == "ml.m5.huge":  # a known family: its sizes are listed
        assert "ml.m5.xlarge" in err and "families" not in err
    assert created(account) == {}


def test_the_offered_instance_types_differ_by_job_kind() -> None:
    # ml.t3 trains but does not host; ml.inf1 hosts but does not train or transform (SageMaker's own lists)
    """Issue 23, defect 4: instance types SageMaker does not offer for the job kind."""
    assert "ml.t3.medium" in offered_instance_types("training")
    assert "ml.t3.medium" not in offered_instance_types("hosting")
    assert "ml.inf1.xlarge" in offered_instance_types("hosting")
    assert "ml.inf1.xlarge" not in offered_instance_types("transform")


@pytest.mark.parametrize("argv", [
    ["deploy", "--model-data", MISSING],
    ["deploy-multi", "--model-prefix", f"s3://{BUCKET}/mme"],
    ["transform", "--model-data", MISSING, "--input", "{records}", "--output", "{out}"],
    ["train", "--data", str(EXAMPLES / "classif"), "--task", "classif"],
])
def test_instance_count_0_is_refused_everywhere(account: Clients, capsys, tmp_path: Path, argv: list[str]) -> None:
    """Issue 23, defect 5: zero instances."""
    argv = [a.format(records=records_file(tmp_path), out=tmp_path / "out") for a in argv]
    status, _, err = cli(capsys, *argv, "--instance-type", "ml.m5.xlarge", "--instance-count", "0")
    assert status == 2 and "error: instance_count=0: expected an integer >= 1" in err
    assert created(account) == {}


@pytest.mark.parametrize("argv", [
    ["deploy-multi", "--model-prefix", "s3://smtx-no-such-bucket/mme", "--instance-type", "ml.m5.xlarge"],
    ["add-model", "--model-data", MISSING, "--model-prefix", "s3://smtx-no-such-bucket/mme"],
    ["upload", str(EXAMPLES / "classif"), "--task", "classif", "--s3-prefix", "s3://smtx-no-such-bucket/smtx"],
])
def test_a_missing_bucket_message_offers_only_flags_the_command_takes(account: Clients, capsys,
                                                                      argv: list[str]) -> None:
    """Issue 23, defect 6: a missing bucket: only flags the command takes are suggested."""
    status, _, err = cli(capsys, *argv)
    assert status == 2 and "bucket 'smtx-no-such-bucket' (from s3://smtx-no-such-bucket/" in err
    assert f"`aws s3 mb s3://smtx-no-such-bucket --region {REGION}`" in err
    offered = "--create-bucket" in err
    assert offered == (argv[0] == "upload")
    if not offered:  # the flag the message would have offered is indeed refused by this command
        with pytest.raises(SystemExit) as refused:
            build_parser(ENV).parse_args([*argv, "--create-bucket"])
        assert refused.value.code == 2 and "unrecognized arguments: --create-bucket" in capsys.readouterr().err
    assert created(account) == {}


def test_the_workers_and_jsonlines_messages_read_well(account: Clients, capsys, tmp_path: Path) -> None:
    """Issue 23, defect 10: wording."""
    status, _, err = cli(capsys, "deploy", "--model-data", MISSING, "--instance-type", "ml.m5.xlarge",
                         "--workers", "0")
    assert status == 2 and "None" not in err
    assert re.fullmatch(r"error: workers=0: expected an integer between 1 and \d+ \(SAGEMAKER_MODEL_SERVER_WORKERS\), "
                        r"or no value, for the container's default\n", err), err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"text": "fine"}) + '\n{"text": "unterminated\n', encoding="utf-8")
    status, _, err = cli(capsys, "invoke", "smtx-ep-x", "--file", str(broken))
    assert status == 2 and " at at " not in err
    assert f"file='{broken}:2': expected one JSON object per line (Unterminated string starting at column 10)" in err
    assert created(account) == {}


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def _object_tags(clients: Clients) -> dict[str, dict[str, str]]:
    """key -> tags of every object the launcher wrote: not the fixture's stand-in archive, nor what SageMaker's
    stand-ins write (transform and async answers)."""
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    ours = [key for key in keys if key != MODEL_DATA.split("/", 3)[3] and "/output/" not in key
            and not key.startswith("smtx/async-out/")]
    return {key: {t["Key"]: t["Value"] for t in clients.s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}
            for key in ours}


def test_every_s3_object_the_launcher_writes_is_tagged_like_its_resources(
        simulated_account: Clients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Issue 23, account hygiene: upload, train's data, transform's input, invoke-async's input and add-model's
    copy carry smtx:created-by, smtx:command and the --tag tags, as the jobs and models do."""
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    out = cli(capsys, "deploy", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge", "--async",
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
        before = set(_object_tags(simulated_account))
        assert cli(capsys, *argv)[0] in (0, 1), command  # moto's transform writes no output: exit 1
        written[command] = {k: v for k, v in _object_tags(simulated_account).items() if k not in before}
    expected_keys = {"upload": 3, "train": 3, "transform": 1, "invoke-async": 1, "add-model": 1}
    assert {command: len(objects) for command, objects in written.items()} == expected_keys, written
    for command, objects in written.items():
        extra = {"cost centre": "42"} if command == "train" else {}
        for key, tags in objects.items():
            assert tags == {"team": "nlp", **extra, "smtx:created-by": "smtx-launcher", "smtx:command": command}, key
    # S3 takes 10 tags an object: more is refused before anything is written or created
    many = [f"--tag=k{i}=v" for i in range(9)]
    status, _, err = cli(capsys, *runs["transform"], *many)
    assert status == 2 and "tag=10: expected at most 8 tags where the command writes to S3" in err
    assert len(simulated_account.sagemaker.list_models()["Models"]) == 2  # the endpoint's and the first transform's
