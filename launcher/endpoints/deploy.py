"""Endpoints: a SageMaker model, an endpoint config and an endpoint, from a training job or a URI.

An endpoint serves on instances (real-time), serverless (``launcher.endpoints.serverless``, which holds every
rule of that kind) or asynchronously (``launcher.endpoints.asynchronous``). The three resources of a new deploy
share one unique name, so ``launcher delete --endpoint NAME`` finds what deploy created; an update in place
(``launcher.endpoints.update``) gives the endpoint a new model and config, which ``delete`` finds through the
endpoint.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from launcher.aws import Clients
from launcher.checks import DEFAULT_INSTANCE, check_image, check_instances, check_role
from launcher.endpoints import serverless as serverless_rules
from launcher.endpoints.asynchronous import Asynchronous
from launcher.endpoints.capture import Capture
from launcher.endpoints.serverless import Serverless, archive_runtime
from launcher.errors import SettingError, require
from launcher.images import check_gpu_image
from launcher.jobs.training import model_artifact
from launcher.names import NAME_PATTERN, unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri, exists
from launcher.waiting import Poller, wait_for_status
from tasks.serving_contract import VARIABLES, ServeConfigError

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
VARIANT = "AllTraffic"
#: ServingConfig field -> the container's variable (its name and bounds); a field left None is not sent
ENVIRONMENT = {field: VARIABLES[key] for field, key in (
    ("workers", "workers"), ("batch_size", "batch_size"), ("max_batch_delay_ms", "max_batch_delay_ms"),
    ("response_timeout_s", "ts_response_timeout_s"), ("model_server_timeout_s", "model_server_timeout_s"))}
#: variable name -> its rule, for the values sent through --env
_CONTRACT = {var.name: var for var in VARIABLES.values()}
#: endpoint status -> True: ready, False: failed, None: keep waiting
ENDPOINT_STATES: dict[str, bool | None] = {
    "InService": True, "Failed": False, "OutOfService": False, "Deleting": False,
    "Creating": None, "Updating": None, "SystemUpdating": None, "RollingBack": None, "UpdateRollbackFailed": False,
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ServingConfig:
    """How to serve: image, role, instances (or serverless / async) and the TorchServe knobs as environment."""

    image_uri: str
    role_arn: str
    #: None for a serverless endpoint, which has no instances
    instance_type: str | None = DEFAULT_INSTANCE
    instance_count: int = 1
    #: TorchServe workers per model; None keeps the container's default: one per visible GPU, else one
    #: (entrypoints/serve.py's with_default_workers; the bounds are tasks/serving_contract.py's)
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
    #: serverless inference instead of instances (instance_type must then be None)
    serverless: Serverless | None = None
    #: asynchronous inference on the instances
    asynchronous: Asynchronous | None = None
    #: endpoint data capture (real-time and asynchronous endpoints only)
    capture: Capture | None = None
    #: tags, VPC, KMS key, network isolation
    placement: Placement = field(default_factory=Placement)

    def __post_init__(self) -> None:
        check_image(self.image_uri)
        check_role(self.role_arn)
        self._check_kind()
        for name, var in ENVIRONMENT.items():
            value = getattr(self, name)
            unset = "or no value, for the container's default"
            require(value is None or type(value) is int, name, value, f"{var.expected()} ({var.name}), {unset}")
            try:
                var.check(value) if value is not None else None
            except ServeConfigError:
                raise SettingError(name, value, f"{var.expected()} ({var.name}), {unset}") from None
        for key, value in self.extra_environment.items():
            require(bool(_ENV_NAME.fullmatch(key)) and isinstance(value, str), "extra_environment", {key: value},
                    "NAME=value pairs with NAME matching [A-Za-z_][A-Za-z0-9_]*")
        parsed = self._check_environment()
        if self.serverless is not None:
            serverless_rules.check_limits(parsed)

    def _check_environment(self) -> dict[str, Any]:
        """Every variable of the container's contract, parsed by the container's own rule (so ``--env`` cannot
        send a value the server would refuse at start); the typed values by name."""
        parsed: dict[str, Any] = {}
        for name, raw in self.environment().items():
            var = _CONTRACT.get(name)
            if var is not None and raw.strip():
                try:
                    parsed[name] = var.parse(raw)
                except ServeConfigError:
                    raise SettingError(name, raw, var.expected()) from None
        return parsed

    def _check_kind(self) -> None:
        if self.serverless is None:
            check_instances(str(self.instance_type), self.instance_count, "hosting")
            check_gpu_image(self.image_uri, str(self.instance_type))
            return
        serverless_rules.check_endpoint(self.instance_type, self.instance_count, self.asynchronous is not None,
                                        self.capture.destination_uri if self.capture else None, self.placement)

    def environment(self) -> dict[str, str]:
        """The container environment: the kind's defaults, the knobs that are set, then extra_environment."""
        kind = self.serverless or self.asynchronous
        values = {var.name: getattr(self, name) for name, var in ENVIRONMENT.items()}
        return {**(kind.environment() if kind else {}),
                **{var: str(v) for var, v in values.items() if v is not None}, **self.extra_environment}


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
    """The URI of an existing model.tar.gz, from either that URI or the name of a Completed training job.

    The archive is looked for here, before any model, endpoint or job is made from it: SageMaker itself would
    accept a missing key and fail only when the container starts."""
    if source.startswith("s3://"):
        check_model_data(source)
        model_data = source
    else:
        model_data = model_artifact(clients, model_source(training_job=source))
    archive = S3Uri.parse(model_data)
    require(exists(clients.s3, archive), "model_data", model_data,
            f"an existing archive: bucket {archive.bucket!r} has no key {archive.key!r}"
            + ("" if source.startswith("s3://") else f" (the artifact of training job {source})"))
    return model_data


def create_model(clients: Clients, name: str, config: ServingConfig, container: dict[str, Any],
                 command: str = "deploy") -> str:
    """Create a SageMaker model from ``container`` (ModelDataUrl, Mode) plus the image, environment, VPC,
    network isolation and tags."""
    clients.sagemaker.create_model(**model_request(name, config, container, command))
    log.info("created model %s", name)
    return name


def model_request(name: str, config: ServingConfig, container: dict[str, Any], command: str) -> dict[str, Any]:
    """The CreateModel arguments (pure: tests assert on it)."""
    primary = {"Image": config.image_uri, "Environment": config.environment(), **container}
    return {"ModelName": name, "ExecutionRoleArn": config.role_arn, "PrimaryContainer": primary,
            "Tags": config.placement.tag_list(command), **config.placement.model_fields()}


def endpoint_config_request(name: str, model: str, config: ServingConfig, command: str) -> dict[str, Any]:
    """The CreateEndpointConfig arguments (pure: tests assert on it)."""
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model, "InitialVariantWeight": 1.0}
    if config.serverless is not None:
        variant.update(config.serverless.variant())
    else:
        variant.update({"InstanceType": config.instance_type, "InitialInstanceCount": config.instance_count})
    request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant],
                               "Tags": config.placement.tag_list(command)}
    volume_key = config.placement.volume_key(str(config.instance_type)) if config.serverless is None else None
    if volume_key:
        request["KmsKeyId"] = volume_key
    if config.asynchronous is not None:
        request["AsyncInferenceConfig"] = config.asynchronous.config(config.placement.kms_key)
    if config.capture is not None:
        request["DataCaptureConfig"] = config.capture.config(config.placement.kms_key)
    return request


def create_endpoint_config(clients: Clients, name: str, model: str, config: ServingConfig,
                           command: str = "deploy") -> str:
    """Create the endpoint config ``name`` serving ``model``."""
    clients.sagemaker.create_endpoint_config(**endpoint_config_request(name, model, config, command))
    return name


def create_endpoint(clients: Clients, name: str, model: str, config: ServingConfig, command: str = "deploy") -> str:
    """Create an endpoint config and an endpoint, both called ``name``, serving ``model``; do not wait."""
    create_endpoint_config(clients, name, model, config, command)
    clients.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name,
                                      Tags=config.placement.tag_list(command))
    log.info("creating endpoint %s", name)
    return name


def wait_for_endpoint(clients: Clients, name: str, poller: Poller | None = None,
                      emit: Emit = log.info) -> dict[str, Any]:
    """Wait until the endpoint is InService and return its description; raise JobFailed if it fails."""
    return wait_for_status(lambda: clients.sagemaker.describe_endpoint(EndpointName=name), "EndpointStatus",
                           ENDPOINT_STATES, "endpoint", name, poller or Poller(interval_s=15.0, timeout_s=3600.0), emit)


def deploy(clients: Clients, source: str, config: ServingConfig, poller: Poller | None = None,
           emit: Emit = log.info, wait: bool = True) -> Deployment:
    """Serve a training job's model (or a model.tar.gz URI) on a new endpoint (instances, serverless or async)."""
    model_data = checked_model_data(clients, source, config)
    name = unique_name(f"{config.name_prefix}-ep")
    create_model(clients, name, config, {"ModelDataUrl": model_data, "Mode": "SingleModel"})
    create_endpoint(clients, name, name, config)
    if wait:
        wait_for_endpoint(clients, name, poller, emit)
    return Deployment(endpoint=name, endpoint_config=name, model=name, model_data=model_data)


def checked_model_data(clients: Clients, source: str, config: ServingConfig) -> str:
    """The archive's URI, and for a serverless endpoint the check that its runtime fits the memory asked for."""
    model_data = resolve_model_data(clients, source)
    if config.serverless is not None:
        config.serverless.check_memory(archive_runtime(clients.s3, model_data))
    return model_data
