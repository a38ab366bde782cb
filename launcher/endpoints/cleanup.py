"""Delete what a deploy or transform created, and list what exists."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code, not_found, resource_exists
from launcher.endpoints.autoscale import remove_scaling

log = logging.getLogger(__name__)


def try_delete(kind: str, call: Callable[[], Any]) -> str:
    """Run a delete call; one line saying what happened (a missing resource is not an error)."""
    try:
        call()
    except ClientError as exc:
        if not_found(exc):
            return f"{kind} not found (already deleted?)"
        raise
    log.info("deleted %s", kind)
    return f"deleted {kind}"


def endpoint_parts(clients: Clients, endpoint: str) -> tuple[str, list[str]]:
    """The endpoint's config and models; falls back to the deploy naming scheme when they are gone."""
    sm = clients.sagemaker
    try:
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except ClientError as exc:
        if not not_found(exc):
            raise
        config = endpoint
    try:
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        models = sorted({v["ModelName"] for v in variants})
    except ClientError as exc:
        if not not_found(exc):
            raise
        models = [endpoint]
    return config, models


def endpoint_exists(clients: Clients, endpoint: str) -> bool:
    """Whether ``endpoint`` exists (in any status)."""
    return resource_exists(clients.sagemaker.describe_endpoint, EndpointName=endpoint)


def model_exists(clients: Clients, model: str) -> bool:
    """Whether a SageMaker model called ``model`` exists."""
    return resource_exists(clients.sagemaker.describe_model, ModelName=model)


def endpoint_config_exists(clients: Clients, config: str) -> bool:
    """Whether an endpoint config called ``config`` exists."""
    return resource_exists(clients.sagemaker.describe_endpoint_config, EndpointConfigName=config)


def delete_endpoint(clients: Clients, endpoint: str) -> list[str]:
    """Delete an endpoint's autoscaling, the endpoint, its endpoint config and its models; one line per resource
    saying what happened. The scaling target goes first: left behind, it would try to scale a missing endpoint."""
    sm = clients.sagemaker
    config, models = endpoint_parts(clients, endpoint)
    report = _remove_scaling_if_allowed(clients, endpoint)
    report += [try_delete(f"endpoint {endpoint}", lambda: sm.delete_endpoint(EndpointName=endpoint)),
               try_delete(f"endpoint config {config}", lambda: sm.delete_endpoint_config(EndpointConfigName=config))]
    report += [delete_model(clients, model) for model in models]
    return report


def _remove_scaling_if_allowed(clients: Clients, endpoint: str) -> list[str]:
    """remove_scaling, or one line saying why it could not look: credentials without the Application Auto
    Scaling permissions (docs/sagemaker.md) can still delete endpoints that were never autoscaled."""
    try:
        return remove_scaling(clients, endpoint)
    except ClientError as exc:
        if error_code(exc) not in ("AccessDenied", "AccessDeniedException"):
            raise
        return [f"autoscaling of {endpoint} not checked ({error_code(exc)}): if it had any, remove it with "
                "application-autoscaling deregister-scalable-target"]


def delete_model(clients: Clients, model: str) -> str:
    """Delete one SageMaker model (the artifacts in S3 stay)."""
    return try_delete(f"model {model}", lambda: clients.sagemaker.delete_model(ModelName=model))


@dataclass(frozen=True)
class _Listing:
    operation: str
    items: str
    name: str
    status: str | None


#: kind -> how to list it
LISTINGS: dict[str, _Listing] = {
    "training-jobs": _Listing("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobStatus"),
    "tuning-jobs": _Listing("list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries",
                            "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"),
    "transform-jobs": _Listing("list_transform_jobs", "TransformJobSummaries", "TransformJobName",
                               "TransformJobStatus"),
    "models": _Listing("list_models", "Models", "ModelName", None),
    "endpoint-configs": _Listing("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", None),
    "endpoints": _Listing("list_endpoints", "Endpoints", "EndpointName", "EndpointStatus"),
}
