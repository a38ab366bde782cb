"""deploy: a real-time endpoint from an archive or a training job -- the requests it sends, the waits, and
the bad input it refuses before anything is created (serverless and async endpoints: test_endpoints.py)."""
from __future__ import annotations

import re

import pytest

from launcher.aws import Clients
from launcher.cli import main
from launcher.endpoints.deploy import ServingConfig, deploy, endpoint_config_request, model_request, wait_for_endpoint
from launcher.errors import JobFailed, SettingError
from launcher.jobs.hyperparameters import Hyperparameters
from launcher.jobs.training import TrainingConfig, start_training_job
from launcher.placement import Placement
from launcher.waiting import Poller
from tests.helpers import EXAMPLES
from tests.helpers.launcher_account import (
    BUCKET,
    CPU_IMAGE,
    ENV,
    GPU_IMAGE,
    INSTANT,
    KEY,
    MISSING,
    MODEL_DATA,
    REGION,
    ROLE,
    SERVING,
    backend,
    cli,
    created,
)
from tests.helpers.moto_sagemaker import write_model_artifacts


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
def test_a_model_data_without_s3_is_not_read_as_a_training_job(empty_account: Clients, capsys) -> None:
    """Issue 12, defect 4: --model-data is a URI, --training-job a name."""
    status, _, err = cli(capsys, "deploy", "--model-data", "my-bucket/smtx/model.tar.gz")
    assert status == 2 and "Could not find training job" not in err
    assert ("error: model_data='my-bucket/smtx/model.tar.gz': expected the s3://bucket/key URI of a model.tar.gz "
            "(for a training job, use --training-job)") in err
    status, _, err = cli(capsys, "add-model", "--training-job", "my-bucket/job", "--model-prefix", "s3://b/mme")
    assert status == 2 and "training_job='my-bucket/job': expected the name of a training job" in err
    assert not created(empty_account)


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
@pytest.mark.parametrize("command", ["deploy", "deploy --serverless --memory-mb 2048 --max-concurrency 1",
                                     f"deploy --async --output s3://{BUCKET}/async"])
def test_deploy_refuses_a_missing_archive_before_creating_anything(account: Clients, capsys, command: str) -> None:
    """Issue 23, defects 1 and 2: a model archive that does not exist."""
    instances = [] if "serverless" in command else ["--instance-type", "ml.m5.xlarge"]
    status, out, err = cli(capsys, *command.split(), "--model-data", MISSING, *instances)
    assert status == 2 and not out
    assert err == (f"error: model_data='{MISSING}': expected an existing archive: bucket '{BUCKET}' has no key "
                   "'missing/model.tar.gz'\n")
    assert created(account) == {}


def test_deploy_from_a_job_whose_artifact_is_missing_names_the_job(account: Clients, capsys) -> None:
    """Issue 23, defects 1 and 2: a model archive that does not exist."""
    status, out, _ = cli(capsys, "train", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--no-wait",
                         "--instance-type", "ml.m5.xlarge")
    job = re.search(r"training job (\S+)", out).group(1)  # type: ignore[union-attr]
    before = created(account)
    status, _, err = cli(capsys, "deploy", "--training-job", job, "--instance-type", "ml.m5.xlarge")
    assert status == 2 and f"(the artifact of training job {job})" in err  # moto trains nothing
    assert created(account) == before


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def test_a_gpu_instance_without_a_gpu_image_names_both_ways_out(simulated_account: Clients,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["deploy", "--model-data", MODEL_DATA], env={**ENV, "SMTX_GPU_IMAGE": ""})
    err = capsys.readouterr().err
    assert status == 2 and "--gpu-image or SMTX_GPU_IMAGE for a GPU instance (ml.g4dn.xlarge)" in err
    assert "ml.m5.xlarge" in err
    status = main(["deploy", "--model-data", MODEL_DATA, "--image", "acct/smtx:latest"],
                  env={**ENV, "SMTX_GPU_IMAGE": "", "SMTX_SERVING_IMAGE": "acct/smtx:latest"})
    assert status == 2 and "it is the configured CPU image" in capsys.readouterr().err


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


# the Python API against moto as it is (each test plays SageMaker's part itself) --------------------------------------
def test_deploy_sends_the_container_environment_and_waits_for_in_service(model_account: Clients) -> None:
    made = deploy(model_account, MODEL_DATA, SERVING, wait=False)
    assert made.endpoint == made.endpoint_config == made.model
    container = model_account.sagemaker.describe_model(ModelName=made.model)["PrimaryContainer"]
    assert container["ModelDataUrl"] == MODEL_DATA and container["Mode"] == "SingleModel"
    assert container["Environment"] == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_TS_BATCH_SIZE": "16",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "20", "SAGEMAKER_TS_RESPONSE_TIMEOUT": "120",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "120"}
    variant = model_account.sagemaker.describe_endpoint_config(EndpointConfigName=made.endpoint_config)[
        "ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        made.model, "ml.g4dn.xlarge", 1)
    endpoint = backend().endpoints[made.endpoint]
    endpoint.endpoint_status = "Creating"
    states = iter(["Creating", "InService"])
    shown: list[str] = []
    poller = Poller(interval_s=0, timeout_s=10, sleep=lambda _: setattr(endpoint, "endpoint_status", next(states)))
    assert wait_for_endpoint(model_account, made.endpoint, poller, shown.append)["EndpointStatus"] == "InService"
    assert shown == [f"endpoint {made.endpoint}: Creating", f"endpoint {made.endpoint}: InService"]


def test_a_failed_endpoint_raises_with_its_reason(model_account: Clients) -> None:
    made = deploy(model_account, MODEL_DATA, SERVING, wait=False)
    endpoint = backend().endpoints[made.endpoint]
    endpoint.endpoint_status, endpoint.failure_reason = "Failed", "The primary container did not pass the ping"
    with pytest.raises(JobFailed, match="did not pass the ping"):
        wait_for_endpoint(model_account, made.endpoint, INSTANT, lambda _: None)


def test_deploy_from_a_training_job_needs_a_completed_job_and_a_tarball_uri(model_account: Clients) -> None:
    config = TrainingConfig(image_uri=SERVING.image_uri, role_arn=ROLE, data_uri=f"s3://{BUCKET}/data/",
                            output_uri=f"s3://{BUCKET}/output", hyperparameters=Hyperparameters(task_name="ner"))
    job = start_training_job(model_account, config)
    with pytest.raises(SettingError, match=f"has no key 'output/{job}/output/model.tar.gz' .the artifact of "):
        deploy(model_account, job, SERVING, wait=False)  # moto trains nothing: the archive is missing
    write_model_artifacts(REGION)
    job = start_training_job(model_account, config)
    made = deploy(model_account, job, SERVING, wait=False)
    assert made.model_data == f"s3://{BUCKET}/output/{job}/output/model.tar.gz"
    backend().training_jobs[job].training_job_status = "InProgress"
    with pytest.raises(SettingError, match="a Completed training job"):
        deploy(model_account, job, SERVING, wait=False)
    with pytest.raises(SettingError, match="model_data"):
        deploy(model_account, f"s3://{BUCKET}/models/classif/", SERVING, wait=False)
    with pytest.raises(SettingError, match="training_job='smtx-classif-missing': expected the name of an existing"):
        deploy(model_account, "smtx-classif-missing", SERVING, wait=False)
