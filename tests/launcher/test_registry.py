"""The Model Registry commands against moto in process: register (group created once, version PendingManualApproval
with its inference specification, metrics beside the archive, tagged, and a Model Card), approve / reject with a
reason, list --group, deploy --model-package (refused unless Approved or --force), and refusals that create
nothing.

moto 5.2.5 keeps the version's fields but drops its ModelCard, and its ListTags crashes on a model package: the
version's tags are read from moto's store, the package's own card is checked on the request we build."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from launcher import registry
from launcher.aws import Clients
from launcher.placement import Placement
from tasks.serving_contract import JSON, JSONLINES
from tests.helpers.moto_sagemaker import offline_account, run_cli, simulate_sagemaker

REGION = "eu-west-1"
BUCKET = "smtx-registry"
CPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1"
GPU_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1-gpu"
ENV = {"SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution", "SMTX_SERVING_IMAGE": CPU_IMAGE,
       "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx"}
MODEL = f"s3://{BUCKET}/models/m/model.tar.gz"
SPEC = {"task": "classif", "model_type": "bert", "labels": ["politics", "sports"], "max_seq_length": 128,
        "stride": 32, "use_bbox": False, "schema_version": 2}
METRICS = {"dev": {"accuracy": 0.9, "f1_macro": 0.88, "loss": 0.3},
           "test": {"accuracy": 0.875, "f1_macro": 0.86, "confusion_matrix": {"labels": ["politics", "sports"],
                                                                        "matrix": [[5, 1], [1, 5]]}},
           "info": {"base_model": "tiny-bert", "hyperparameters": {"task_name": "classif", "num_train_epochs": 3},
                    "data_sizes": {"train": 32, "dev": 12, "test": 12}}}


def archive_bytes(files: dict[str, Any]) -> bytes:
    """A model.tar.gz holding ``files`` (name -> JSON-able content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        clients.s3.put_object(Bucket=BUCKET, Key="models/m/model.tar.gz",
                              Body=archive_bytes({"task_spec.json": SPEC, "metrics.json": METRICS}))
        simulate_sagemaker(REGION)
        yield clients


def _nothing_created(clients: Clients) -> None:
    assert clients.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert clients.sagemaker.list_model_cards()["ModelCardSummaries"] == []
    assert clients.sagemaker.list_endpoints()["Endpoints"] == []
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == ["models/m/model.tar.gz"]


def _register(capsys: Any, *extra: str, env: dict[str, str] = ENV) -> str:
    status, out, err = run_cli(capsys, env, "register", "--model-data", MODEL, "--group", "sentiment", *extra)
    assert status == 0, err
    return next(line.split()[1] for line in out.splitlines() if line.startswith("registered "))


def test_register_creates_the_group_once_and_a_pending_version_with_its_specification(aws: Clients, capsys) -> None:
    arn = _register(capsys, "--tag", "team=nlp")
    tags = {t["Key"]: t["Value"] for t in aws.s3.get_object_tagging(Bucket=BUCKET, Key="models/m/metrics.json")
            ["TagSet"]}
    assert tags["smtx:command"] == "register" and tags["team"] == "nlp"
    second = _register(capsys)
    assert arn.endswith("model-package/sentiment/1") and second.endswith("model-package/sentiment/2")
    assert len(aws.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]) == 1
    described = aws.sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    spec = described["InferenceSpecification"]
    assert spec["Containers"] == [{"Image": CPU_IMAGE, "ModelDataUrl": MODEL}]
    assert spec["SupportedContentTypes"] == [JSON, JSONLINES] == spec["SupportedResponseMIMETypes"]
    assert "ml.m5.large" in spec["SupportedRealtimeInferenceInstanceTypes"]  # the CPU image: serverless runs it
    assert "ml.m5.xlarge" in spec["SupportedTransformInstanceTypes"]
    assert "AdditionalInferenceSpecifications" not in described  # no GPU image configured
    metrics = described["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert metrics == {"ContentType": JSON, "S3Uri": f"s3://{BUCKET}/models/m/metrics.json"}
    stored = json.loads(aws.s3.get_object(Bucket=BUCKET, Key="models/m/metrics.json")["Body"].read())
    assert stored["test"]["f1_macro"] == 0.86
    # moto's ListTags crashes on a model package: its tags are read from moto's own store
    package = next(p for p in sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].model_packages.values()
                   if p.arn == arn)
    assert {"Key": "smtx:created-by", "Value": "smtx-launcher"} in package.tags


def test_register_writes_a_model_card_with_task_labels_sizes_metrics_and_intended_use(aws: Clients, capsys) -> None:
    arn = _register(capsys)
    card = aws.sagemaker.describe_model_card(ModelCardName="sentiment-v1")
    content = json.loads(card["Content"])
    assert card["ModelCardStatus"] == "Draft"
    assert content["model_overview"]["problem_type"] == "classif"
    assert content["model_overview"]["model_artifact"] == [MODEL]
    assert "politics, sports" in content["model_overview"]["model_description"]
    assert content["additional_information"]["custom_details"]["data_sizes"] == "32 train, 12 dev, 12 test"
    assert content["additional_information"]["custom_details"]["model_package_arn"] == arn
    test_metrics = content["evaluation_details"][0]["metric_groups"][0]["metric_data"]
    assert {"name": "f1_macro", "type": "number", "value": 0.86} in test_metrics
    assert all(m["name"] != "confusion_matrix" for m in test_metrics)  # only scalars are metrics
    assert "application/jsonlines" in content["intended_uses"]["intended_uses"]
    assert content["training_details"]["objective_function"] == {"function": "Maximize", "facet": "f1_macro",
                                                                 "condition": "on the dev split"}


def test_the_package_carries_the_same_card_and_a_gpu_specification_when_a_gpu_image_is_set() -> None:
    # moto drops CreateModelPackage's ModelCard, so the request itself is what can be checked
    facts = registry.ModelFacts(SPEC, METRICS, "test")
    card = registry.model_card_content(facts, MODEL)
    request = registry.package_request("g", "classif", MODEL, "s3://b/metrics.json", CPU_IMAGE, GPU_IMAGE,
                                       Placement(), facts=facts)
    assert json.loads(request["ModelCard"]["ModelCardContent"]) == card
    gpu = request["AdditionalInferenceSpecifications"][0]
    assert gpu["Name"] == "gpu" and gpu["Containers"] == [{"Image": GPU_IMAGE, "ModelDataUrl": MODEL}]
    assert all(t.startswith("ml.g") for t in gpu["SupportedRealtimeInferenceInstanceTypes"])
    assert request["Task"] == "CLASSIFICATION" and request["CustomerMetadataProperties"]["smtx:test-f1_macro"] == \
        "0.86"


def test_register_reads_a_local_checkpoint_when_given(aws: Clients, capsys, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "task_spec.json").write_text(json.dumps({**SPEC, "labels": ["a", "b", "c"]}))
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    _register(capsys, "--checkpoint", str(folder))
    content = json.loads(aws.sagemaker.describe_model_card(ModelCardName="sentiment-v1")["Content"])
    assert content["additional_information"]["custom_details"]["labels"] == "a, b, c"


@pytest.mark.parametrize(("argv", "field"), [
    (["--group", "bad_name"], "group="),
    (["--group", "g", "--model-data", f"s3://{BUCKET}/models/missing/model.tar.gz"], "model_data="),
    (["--group", "g", "--model-data", f"s3://{BUCKET}/models/m/model.zip"], "model_data="),
    (["--group", "g", "--description", "x" * 1025], "description="),
    (["--group", "g", "--tag", "smtx:mine=1"], "tag="),
    (["--group", "g", "--checkpoint", "/nonexistent"], "checkpoint="),
    (["--group", "g", "--image", ""], "image="),
])
def test_bad_register_input_is_one_line_exit_2_and_creates_nothing(aws: Clients, capsys, argv: list[str],
                                                                   field: str) -> None:
    full = argv if "--model-data" in argv else ["--model-data", MODEL, *argv]
    env = {k: v for k, v in ENV.items() if k != "SMTX_SERVING_IMAGE"} if "--image" in argv else ENV
    status, out, err = run_cli(capsys, env, "register", *full)
    assert status == 2 and err.count("\n") == 1 and field in err, err
    _nothing_created(aws)


def test_an_archive_without_the_training_facts_is_refused_before_anything_is_created(aws: Clients, capsys) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="models/bare/model.tar.gz", Body=archive_bytes({"config.json": {}}))
    status, _, err = run_cli(capsys, ENV, "register", "--model-data", f"s3://{BUCKET}/models/bare/model.tar.gz",
                             "--group", "g")
    assert status == 2 and "metrics.json and task_spec.json" in err and "--checkpoint" in err
    assert aws.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_approve_and_reject_set_the_status_and_keep_the_reason(aws: Clients, capsys) -> None:
    arn = _register(capsys)
    status, out, _ = run_cli(capsys, ENV, "approve", arn, "--reason", "beats v0 on test f1")
    assert status == 0 and "PendingManualApproval -> Approved" in out
    described = aws.sagemaker.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "beats v0 on test f1"
    status, out, _ = run_cli(capsys, ENV, "reject", arn, "--reason", "label drift")
    assert status == 0 and "Approved -> Rejected" in out
    assert aws.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"


@pytest.mark.parametrize(("version", "reason", "field"), [
    ("sentiment/1", "ok", "version="),
    ("arn:aws:sagemaker:eu-west-1:123456789012:model-package/sentiment/9", "ok", "version="),
    ("VERSION", "  ", "reason="),
])
def test_a_bad_approval_is_one_line_exit_2_and_changes_nothing(aws: Clients, capsys, version: str, reason: str,
                                                              field: str) -> None:
    arn = _register(capsys)
    status, _, err = run_cli(capsys, ENV, "approve", arn if version == "VERSION" else version, "--reason", reason)
    assert status == 2 and err.count("\n") == 1 and field in err, err
    assert aws.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == \
        "PendingManualApproval"


def test_list_shows_groups_and_versions_with_their_approval_status(aws: Clients, capsys) -> None:
    first = _register(capsys)
    second = _register(capsys, "--description", "retrained on May data")
    run_cli(capsys, ENV, "approve", first, "--reason", "ok")
    status, out, _ = run_cli(capsys, ENV, "list", "--group", "sentiment")
    assert status == 0
    lines = out.splitlines()
    assert first in lines[0] and "Approved" in lines[0]
    assert second in lines[1] and "PendingManualApproval" in lines[1] and "retrained on May data" in lines[1]
    status, out, _ = run_cli(capsys, ENV, "list")
    assert status == 0 and "model-package-groups: 1" in out and "sentiment" in out and first in out
    status, _, err = run_cli(capsys, ENV, "list", "--group", "nope")
    assert status == 2 and "group='nope'" in err


def test_deploy_refuses_an_unapproved_version_and_creates_nothing(aws: Clients, capsys) -> None:
    arn = _register(capsys)
    status, _, err = run_cli(capsys, ENV, "deploy", "--model-package", arn, "--instance-type", "ml.m5.xlarge")
    assert status == 2 and err.count("\n") == 1 and "PendingManualApproval, not Approved" in err, err
    assert aws.sagemaker.list_endpoints()["Endpoints"] == [] and aws.sagemaker.list_models()["Models"] == []


def test_deploy_serves_an_approved_version_with_its_own_image(aws: Clients, capsys) -> None:
    arn = _register(capsys)
    run_cli(capsys, ENV, "approve", arn, "--reason", "ok")
    other_env = {**ENV, "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/other:9"}
    status, out, err = run_cli(capsys, other_env, "deploy", "--model-package", arn, "--instance-type",
                               "ml.m5.xlarge")
    assert status == 0, err
    assert f"serving {MODEL}" in out
    model = aws.sagemaker.list_models()["Models"][0]["ModelName"]
    container = aws.sagemaker.describe_model(ModelName=model)["PrimaryContainer"]
    assert container["Image"] == CPU_IMAGE and container["ModelDataUrl"] == MODEL


def test_force_deploys_an_unapproved_version_with_a_warning(aws: Clients, capsys) -> None:
    arn = _register(capsys)
    status, _, err = run_cli(capsys, ENV, "deploy", "--model-package", arn, "--serverless", "--memory-mb", "2048",
                             "--max-concurrency", "2", "--force")
    assert status == 0 and "warning: deploying" in err and "(--force)" in err
    assert len(aws.sagemaker.list_endpoints()["Endpoints"]) == 1


@pytest.mark.parametrize(("argv", "field"), [
    (["--instance-type", "ml.g4dn.xlarge"], "instance_type="),  # the version has no GPU image
    (["--image", CPU_IMAGE, "--instance-type", "ml.m5.xlarge"], "image="),
])
def test_deploy_of_a_version_refuses_what_it_cannot_serve(aws: Clients, capsys, argv: list[str], field: str) -> None:
    arn = _register(capsys)
    run_cli(capsys, ENV, "approve", arn, "--reason", "ok")
    status, _, err = run_cli(capsys, ENV, "deploy", "--model-package", arn, *argv)
    assert status == 2 and err.count("\n") == 1 and field in err, err
    assert aws.sagemaker.list_endpoints()["Endpoints"] == []


def test_force_without_a_model_package_is_refused(aws: Clients, capsys) -> None:
    status, _, err = run_cli(capsys, ENV, "deploy", "--model-data", MODEL, "--force")
    assert status == 2 and "force=" in err
    assert aws.sagemaker.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("failing", ["CreateModelPackage", "CreateModelCard"])
def test_a_register_that_fails_half_way_leaves_nothing_behind(aws: Clients, failing: str) -> None:
    """SageMaker refusing a later step (here: the call answers AccessDenied, as a role without that permission
    gets) must not leave the new group, the metrics object or the version in the account."""
    from botocore.exceptions import ClientError

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": f"not allowed: {failing}"}},
                          failing)

    aws.sagemaker.meta.events.register(f"before-call.sagemaker.{failing}", refuse)
    facts = registry.read_archive(aws.s3, MODEL)
    with pytest.raises(ClientError, match=f"not allowed: {failing}"):
        registry.register(aws, "sentiment", MODEL, facts, CPU_IMAGE, None, None, Placement())
    assert aws.sagemaker.list_model_packages(ModelPackageGroupName="sentiment",
                                             ModelPackageType="Versioned")["ModelPackageSummaryList"] == []
    _nothing_created(aws)
