"""Real-time endpoints: a SageMaker model, an endpoint config and an endpoint, from a training job or a URI.

The three resources share one unique name, so ``launcher delete --endpoint NAME`` finds what deploy created.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from launcher.aws import Clients
from launcher.checks import check_image, check_instances, check_role
from launcher.errors import SettingError, require
from launcher.names import NAME_PATTERN, unique_name
from launcher.s3 import S3Uri
from launcher.training import model_artifact
from launcher.waiting import Poller, wait_for_status

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
VARIANT = "AllTraffic"
#: ServingConfig field -> (container environment variable, smallest valid value); a field left None is not sent
ENVIRONMENT: dict[str, tuple[str, int]] = {
    "workers": ("SAGEMAKER_MODEL_SERVER_WORKERS", 1),
    "batch_size": ("SAGEMAKER_TS_BATCH_SIZE", 1),
    "max_batch_delay_ms": ("SAGEMAKER_TS_MAX_BATCH_DELAY", 0),
    "response_timeout_s": ("SAGEMAKER_TS_RESPONSE_TIMEOUT", 1),
    "model_server_timeout_s": ("SAGEMAKER_MODEL_SERVER_TIMEOUT", 1),
}
#: endpoint status -> True: ready, False: failed, None: keep waiting
ENDPOINT_STATES: dict[str, bool | None] = {
    "InService": True, "Failed": False, "OutOfService": False, "Deleting": False,
    "Creating": None, "Updating": None, "SystemUpdating": None, "RollingBack": None, "UpdateRollbackFailed": False,
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ServingConfig:
    """How to serve: image, role, instances and the TorchServe knobs passed as container environment."""

    image_uri: str
    role_arn: str
    instance_type: str = "ml.g4dn.xlarge"
    instance_count: int = 1
    #: TorchServe workers per model; None keeps the container's default, one (entrypoints/serve_config.py)
    workers: int | None = None
    #: requests TorchServe batches together; None keeps the container's default
    batch_size: int | None = None
    #: how long TorchServe waits to fill a batch, in milliseconds
    max_batch_delay_ms: int | None = None
    #: seconds TorchServe waits for the handler before answering an error
    response_timeout_s: int | None = None
    #: seconds the model server gives a worker to start or answer
    model_server_timeout_s: int | None = None
    extra_environment: dict[str, str] = field(default_factory=dict)
    name_prefix: str = "smtx"

    def __post_init__(self) -> None:
        check_image(self.image_uri)
        check_role(self.role_arn)
        check_instances(self.instance_type, self.instance_count)
        for name, (_, minimum) in ENVIRONMENT.items():
            value = getattr(self, name)
            require(value is None or (type(value) is int and value >= minimum), name, value,
                    f"None or an integer >= {minimum}")
        for key, value in self.extra_environment.items():
            require(bool(_ENV_NAME.fullmatch(key)) and isinstance(value, str), "extra_environment", {key: value},
                    "NAME=value pairs with NAME matching [A-Za-z_][A-Za-z0-9_]*")

    def environment(self) -> dict[str, str]:
        """The container environment: the knobs that are set, then extra_environment."""
        values = {var: getattr(self, name) for name, (var, _) in ENVIRONMENT.items()}
        return {**{var: str(v) for var, v in values.items() if v is not None}, **self.extra_environment}


@dataclass(frozen=True)
class Deployment:
    """What a deploy created."""

    endpoint: str
    endpoint_config: str
    model: str
    model_data: str


def model_source(training_job: str | None = None, model_data: str | None = None) -> str:
    """The one model source given, checked for its own form before anything asks AWS about it.

    A URI given as --model-data must be one (``my-bucket/model.tar.gz`` is not read as a job name), and a job
    name must be a SageMaker name.
    """
    if (training_job is None) == (model_data is None):
        raise SettingError("model", None, "one of --training-job JOB or --model-data s3://bucket/key.tar.gz")
    if model_data is not None:
        check_model_data(model_data)
        return model_data
    assert training_job is not None
    require(bool(NAME_PATTERN.fullmatch(training_job)), "training_job", training_job,
            "the name of a training job (letters, digits and hyphens, at most 63); for an archive use --model-data")
    return training_job


def check_model_data(uri: str) -> S3Uri:
    """The S3 location of a model archive, or SettingError saying what was expected."""
    expected = "the s3://bucket/key URI of a model.tar.gz (for a training job, use --training-job)"
    require(isinstance(uri, str) and uri.startswith("s3://"), "model_data", uri, expected)
    location = S3Uri.parse(uri, "model_data")
    require(location.key.endswith(".tar.gz"), "model_data", uri, expected)
    return location


def resolve_model_data(clients: Clients, source: str) -> str:
    """A model.tar.gz URI from either that URI or the name of a Completed training job."""
    if source.startswith("s3://"):
        check_model_data(source)
        return source
    return model_artifact(clients, model_source(training_job=source))


def create_model(clients: Clients, name: str, config: ServingConfig, container: dict[str, Any]) -> str:
    """Create a SageMaker model from ``container`` (ModelDataUrl, Mode) plus the image and environment."""
    primary = {"Image": config.image_uri, "Environment": config.environment(), **container}
    clients.sagemaker.create_model(ModelName=name, ExecutionRoleArn=config.role_arn, PrimaryContainer=primary)
    log.info("created model %s", name)
    return name


def create_endpoint(clients: Clients, name: str, model: str, config: ServingConfig) -> str:
    """Create an endpoint config and an endpoint, both called ``name``, serving ``model``; do not wait."""
    clients.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": VARIANT, "ModelName": model, "InstanceType": config.instance_type,
        "InitialInstanceCount": config.instance_count, "InitialVariantWeight": 1.0,
    }])
    clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    log.info("creating endpoint %s", name)
    return name


def wait_for_endpoint(clients: Clients, name: str, poller: Poller | None = None,
                      emit: Emit = log.info) -> dict[str, Any]:
    """Wait until the endpoint is InService and return its description; raise JobFailed if it fails."""
    return wait_for_status(lambda: clients.sagemaker.describe_endpoint(EndpointName=name), "EndpointStatus",
                           ENDPOINT_STATES, "endpoint", name, poller or Poller(interval_s=15.0, timeout_s=3600.0), emit)


def deploy(clients: Clients, source: str, config: ServingConfig, poller: Poller | None = None,
           emit: Emit = log.info, wait: bool = True) -> Deployment:
    """Serve a training job's model (or a model.tar.gz URI) on a new real-time endpoint."""
    model_data = resolve_model_data(clients, source)
    name = unique_name(f"{config.name_prefix}-ep")
    create_model(clients, name, config, {"ModelDataUrl": model_data, "Mode": "SingleModel"})
    create_endpoint(clients, name, name, config)
    if wait:
        wait_for_endpoint(clients, name, poller, emit)
    return Deployment(endpoint=name, endpoint_config=name, model=name, model_data=model_data)
