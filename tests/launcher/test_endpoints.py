"""Serverless and asynchronous endpoints, in-place updates and autoscaling, through the command line against moto
in-process (``mock_aws``); every bad input exits 2 naming the flag and creates nothing."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from launcher.aws import Clients
from launcher.cli import main
from launcher.endpoints.asynchronous import Asynchronous
from launcher.endpoints.deploy import ServingConfig
from launcher.endpoints.serverless import Serverless
from launcher.errors import SettingError
from tests.helpers.launcher_account import BUCKET, CPU_IMAGE, ENV, REGION, ROLE, cli
from tests.helpers.moto_sagemaker import UPDATE_FAILURES, accept_endpoint_updates, offline_account

ONNX = f"s3://{BUCKET}/models/onnx/model.tar.gz"
TORCH = f"s3://{BUCKET}/models/torch/model.tar.gz"
ASYNC_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/async-endpoint-results"


def _archive(runtime: str | None) -> bytes:
    """A model.tar.gz with weights first and serving.json last, as archive/build.py sorts them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {"model.safetensors": b"\0" * 4096}
        if runtime:
            files["serving.json"] = json.dumps(  # as an archive's serving.json names its graph
                {"runtime": runtime, "onnx_file": "model.onnx" if runtime == "onnx" else None}).encode()
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for uri, runtime in ((ONNX, "onnx"), (TORCH, "torch")):
            clients.s3.put_object(Bucket=BUCKET, Key=uri.split("/", 3)[3], Body=_archive(runtime))
        accept_endpoint_updates()
        yield clients


def _endpoint(out: str) -> str:
    match = re.search(r"(?:endpoint|updated) (smtx-ep-[\w-]+) \(config", out)
    assert match, out
    return match.group(1)


def _nothing_created(clients: Clients) -> bool:
    sm = clients.sagemaker
    return not (sm.list_models()["Models"] or sm.list_endpoint_configs()["EndpointConfigs"]
                or sm.list_endpoints()["Endpoints"])


def test_serverless_deploy_sends_memory_concurrency_and_limits_that_fit(aws: Clients,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "deploy", "--model-data", ONNX, "--serverless", "--memory-mb", "2048",
                          "--max-concurrency", "5", "--tag", "team=nlp")
    assert status == 0, out + err
    name = _endpoint(out)
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "KmsKeyId" not in config
    container = aws.sagemaker.describe_model(ModelName=name)["PrimaryContainer"]
    assert container["Image"] == CPU_IMAGE  # serverless has no GPU: the CPU image, never the GPU one
    assert container["Environment"] == {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "4", "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60"}
    tags = aws.sagemaker.list_tags(ResourceArn=aws.sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"])
    assert {t["Key"]: t["Value"] for t in tags["Tags"]} == {
        "team": "nlp", "smtx:created-by": "smtx-launcher", "smtx:command": "deploy"}


@pytest.mark.parametrize("argv, named", [
    (["--memory-mb", "1536", "--max-concurrency", "5"], "memory_mb=1536: expected one of 1024, 2048, 3072"),
    (["--memory-mb", "2048", "--max-concurrency", "201"], "max_concurrency=201: expected an integer in [1, 200]"),
    (["--memory-mb", "2048"], "--memory-mb N and --max-concurrency N"),
    (["--memory-mb", "2048", "--max-concurrency", "5", "--instance-type", "ml.g4dn.xlarge"],
     "no --instance-type, --instance-count or --gpu-image with --serverless"),
    (["--memory-mb", "2048", "--max-concurrency", "5", "--async", "--output", f"s3://{BUCKET}/out"],
     "either --serverless or --async"),
    (["--memory-mb", "2048", "--max-concurrency", "5", "--response-timeout-s", "120"],
     "SAGEMAKER_TS_RESPONSE_TIMEOUT='120': expected seconds in [1, 60] on a serverless endpoint"),
    (["--memory-mb", "2048", "--max-concurrency", "5", "--env", "SAGEMAKER_MAX_PAYLOAD_IN_MB=6"],
     "SAGEMAKER_MAX_PAYLOAD_IN_MB='6': expected at most 4 on a serverless endpoint"),
    (["--memory-mb", "2048", "--max-concurrency", "5", "--network-isolation"], "serverless endpoints have none"),
])
def test_bad_serverless_flags_exit_2_and_create_nothing(aws: Clients, capsys: pytest.CaptureFixture[str],
                                                        argv: list[str], named: str) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--serverless", *argv)
    assert status == 2 and named in err, err
    assert _nothing_created(aws)


@pytest.mark.parametrize("argv, config", [
    (["--instance-type", "ml.m5.large"], {"instance_type": "ml.m5.large"}),
    (["--async", "--output", f"s3://{BUCKET}/out"],
     {"instance_type": None, "asynchronous": Asynchronous(f"s3://{BUCKET}/out")}),
])
def test_a_serverless_rule_says_the_same_from_the_command_line_and_the_python_api(
        aws: Clients, capsys: pytest.CaptureFixture[str], argv: list[str], config: dict[str, Any]) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--serverless", "--memory-mb", "2048",
                         "--max-concurrency", "5", *argv)
    with pytest.raises(SettingError) as refused:
        ServingConfig(CPU_IMAGE, ROLE, serverless=Serverless(2048, 5), **config)
    assert status == 2 and err.strip() == f"error: {refused.value}"


def test_serverless_memory_below_the_archives_runtime_is_refused_naming_the_minimum(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", TORCH, "--serverless", "--memory-mb", "1024",
                         "--max-concurrency", "1")
    assert status == 2 and "memory_mb=1024: expected at least 2048 MB for a torch archive" in err, err
    aws.s3.put_object(Bucket=BUCKET, Key="models/odd/model.tar.gz", Body=b"not a tarball")
    status, _, err = cli(capsys, "deploy", "--model-data", f"s3://{BUCKET}/models/odd/model.tar.gz",
                         "--serverless", "--memory-mb", "1024", "--max-concurrency", "1")
    assert status == 2 and "at least 2048 MB for an archive whose runtime could not be read" in err, err
    assert _nothing_created(aws)
    assert cli(capsys, "deploy", "--model-data", ONNX, "--serverless", "--memory-mb", "1024",
               "--max-concurrency", "1")[0] == 0
    assert cli(capsys, "deploy", "--model-data", TORCH, "--serverless", "--memory-mb", "2048",
               "--max-concurrency", "1")[0] == 0


def test_async_deploy_then_invoke_async_uploads_waits_and_prints_the_answer(
        aws: Clients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge", "--async",
                         "--output", f"s3://{BUCKET}/async-out", "--max-concurrent-invocations", "4",
                          "--success-topic", "arn:aws:sns:eu-west-1:123456789012:done",
                          "--kms-key", "alias/smtx")
    assert status == 0, out
    name = _endpoint(out)
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=name)
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/async-out/", "S3FailurePath": f"s3://{BUCKET}/async-out/"
                         "failures/", "NotificationConfig": {"SuccessTopic": "arn:aws:sns:eu-west-1:123456789012:done"},
                         "KmsKeyId": "alias/smtx"},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}}
    assert config["KmsKeyId"] == "alias/smtx"  # ml.m5 has no local NVMe storage: its volume takes the key
    env = aws.sagemaker.describe_model(ModelName=name)["PrimaryContainer"]["Environment"]
    assert env == {"SMTX_ASYNC_INFERENCE": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1024",
                   "SAGEMAKER_TS_RESPONSE_TIMEOUT": "3600"}

    requests.post(ASYNC_RESULTS, json={"region": REGION, "results": [
        {"data": '{"pred": "positive"}\n'}, {"is_failure": True, "data": "record 1: no text"}]}, timeout=30)
    records = tmp_path / "big.jsonl"
    records.write_text('{"text": "great"}\n', encoding="utf-8")
    status, out, _ = cli(capsys, "invoke-async", name, "--input", str(records), "--wait")
    assert status == 0 and out.splitlines()[-1] == '{"pred": "positive"}', out
    uploaded = re.search(r"queued (s3://\S+):", out).group(1)  # type: ignore[union-attr]
    assert uploaded.startswith(f"s3://{BUCKET}/smtx/async-input/smtx-async-") and uploaded.endswith("/big.jsonl")
    aws.s3.put_object(Bucket=BUCKET, Key="inputs/bad.jsonl", Body=b'{"txt": 1}\n')
    status, out, err = cli(capsys, "invoke-async", name, "--input", f"s3://{BUCKET}/inputs/bad.jsonl", "--wait")
    assert f"queued s3://{BUCKET}/inputs/bad.jsonl:" in out  # an s3:// input is sent as it is
    assert status == 1 and "the request failed" in err and "record 1: no text" in err


def test_invoke_async_bad_input_exits_2(aws: Clients, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = cli(capsys, "invoke-async", "ep", "--input", str(tmp_path / "missing.jsonl"))
    assert status == 2 and "input=" in err and "an existing file" in err
    status, _, err = cli(capsys, "invoke-async", "ep", "--input", f"s3://{BUCKET}/nothing/here.jsonl")
    assert status == 2 and "has no key 'nothing/here.jsonl'" in err
    (tmp_path / "records.csv").write_text("a\n")
    status, _, err = cli(capsys, "invoke-async", "ep", "--input", str(tmp_path / "records.csv"))
    assert status == 2 and "--content-type json|jsonlines" in err
    (tmp_path / "records.jsonl").write_text('{"text": "a"}\n')
    status = main(["invoke-async", "ep", "--input", str(tmp_path / "records.jsonl")],
                  env={**ENV, "SMTX_S3_PREFIX": "s3://no-such-bucket/smtx"})
    assert status == 2 and "bucket 'no-such-bucket'" in capsys.readouterr().err


def test_async_flags_without_async_and_without_output_are_refused(aws: Clients,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--output", f"s3://{BUCKET}/x")
    assert status == 2 and "output=" in err and "no value without --async" in err
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--async")
    assert status == 2 and "an s3:// prefix for the answers with --async" in err
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--async", "--output", f"s3://{BUCKET}/x",
                         "--error-topic", "not-an-arn")
    assert status == 2 and "error_topic='not-an-arn': expected an SNS topic ARN" in err
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--async", "--output", "s3://no-such-bucket/x")
    assert status == 2 and "bucket 'no-such-bucket' (from s3://no-such-bucket/x) does not exist" in err
    assert _nothing_created(aws)


def test_update_in_place_swaps_config_and_model_then_deletes_the_old_ones(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge")[1])
    status, out, _ = cli(capsys, "deploy", "--model-data", TORCH, "--instance-type", "ml.m5.xlarge",
                         "--endpoint", name)
    assert status == 0, out
    new_config = aws.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    assert new_config != name and f"updated {name} (config {new_config}" in out
    assert f"deleted endpoint config {name}\ndeleted model {name}" in out
    models = [m["ModelName"] for m in aws.sagemaker.list_models()["Models"]]
    assert models == [new_config]
    assert aws.sagemaker.describe_model(ModelName=new_config)["PrimaryContainer"]["ModelDataUrl"] == TORCH
    deleted = cli(capsys, "delete", "--endpoint", name)[1]
    assert f"deleted endpoint config {new_config}\ndeleted model {new_config}" in deleted


def test_a_failed_update_leaves_the_old_config_serving_and_removes_what_it_made(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge")[1])
    UPDATE_FAILURES[name] = "the new model failed its health check"
    status, _, err = cli(capsys, "deploy", "--model-data", TORCH, "--instance-type", "ml.m5.xlarge",
                         "--endpoint", name)
    assert status == 1 and "the new model failed its health check" in err
    assert f"it still serves {name} with model {name}" in err and "deleted model smtx-ep-" in err
    assert aws.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == name
    assert [m["ModelName"] for m in aws.sagemaker.list_models()["Models"]] == [name]
    assert [c["EndpointConfigName"] for c in aws.sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [name]


def test_updating_a_missing_or_busy_endpoint_is_refused_before_anything_is_made(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--endpoint", "smtx-ep-nope")
    assert status == 2 and "an existing endpoint to update" in err and _nothing_created(aws)
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge")[1])
    sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[name].endpoint_status = "Updating"
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--endpoint", name)
    assert status == 2 and "an InService endpoint (it is Updating" in err
    assert len(aws.sagemaker.list_models()["Models"]) == 1


def test_autoscale_tracks_invocations_and_delete_removes_the_target_first(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge")[1])
    status, out, _ = cli(capsys, "autoscale", name, "--min", "1", "--max", "4", "--target-invocations", "70",
                         "--scale-in-cooldown", "600")
    assert status == 0 and f"endpoint/{name}/variant/AllTraffic: 1-4 instances" in out
    aas = aws.autoscaling
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 70.0 and tracking["ScaleInCooldown"] == 600
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "SageMakerVariantInvocationsPerInstance"
    assert "autoscaling " in cli(capsys, "describe", name)[1]
    out = cli(capsys, "delete", "--endpoint", name)[1]
    assert out.index("removed autoscaling") < out.index("deleted endpoint ")
    assert not aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]


def test_async_endpoints_scale_to_zero_with_a_backlog_alarm_and_off_removes_it(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge", "--async",
                         "--output", f"s3://{BUCKET}/async-out")[1])
    status, out, _ = cli(capsys, "autoscale", name, "--min", "0", "--max", "2", "--target-backlog", "5")
    assert status == 0 and "starts an instance when requests wait" in out, out
    policies = aws.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert sorted(p["PolicyType"] for p in policies) == ["StepScaling", "TargetTrackingScaling"]
    alarm = aws.cloudwatch.describe_alarms()["MetricAlarms"][0]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity" and alarm["AlarmActions"]
    status, out, _ = cli(capsys, "autoscale", name, "--off")
    assert status == 0 and "deleted alarm" in out and "removed autoscaling" in out
    assert not aws.cloudwatch.describe_alarms()["MetricAlarms"]
    assert "had no autoscaling" in cli(capsys, "autoscale", name, "--off")[1]


@pytest.mark.parametrize("argv, named", [
    (["--min", "0", "--max", "2", "--target-invocations", "10"], "only asynchronous endpoints scale to zero"),
    (["--min", "1", "--max", "2", "--target-backlog", "10"], "--target-invocations for a real-time endpoint"),
    (["--min", "3", "--max", "2", "--target-invocations", "10"], "max=2: expected an integer in [max(1, --min)"),
    (["--min", "1", "--max", "2"], "one of --target-invocations (real-time) or --target-backlog"),
    (["--off", "--min", "1"], "no bounds or target with --off"),
    (["--min", "1", "--max", "2", "--target-invocations", "10", "--variant", "Blue"], "variant='Blue'"),
])
def test_bad_autoscale_flags_exit_2_and_register_nothing(aws: Clients, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str], named: str) -> None:
    name = _endpoint(cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge")[1])
    status, _, err = cli(capsys, "autoscale", name, *argv)
    assert status == 2 and named in err, err
    assert not aws.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]


def test_env_values_of_the_containers_contract_are_checked_by_its_own_rules(
        aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--instance-type", "ml.m5.xlarge",
                         "--env", "SAGEMAKER_MAX_PAYLOAD_IN_MB=abc")
    assert status == 2 and "SAGEMAKER_MAX_PAYLOAD_IN_MB='abc': expected an integer between 1 and 1024" in err
    status, _, err = cli(capsys, "deploy", "--model-data", ONNX, "--serverless", "--memory-mb", "2048",
                         "--max-concurrency", "1", "--env", "SAGEMAKER_MODEL_SERVER_TIMEOUT=61")
    assert status == 2 and "SAGEMAKER_MODEL_SERVER_TIMEOUT='61': expected seconds in [1, 60]" in err
    assert _nothing_created(aws)
