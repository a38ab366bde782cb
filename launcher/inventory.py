"""What exists in the account: ``list`` with creation times, instance types and status, ``describe`` an endpoint."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code
from launcher.endpoints.autoscale import NAMESPACE, resource_id
from launcher.endpoints.cleanup import LISTINGS
from launcher.s3 import MANIFEST_READ_ERRORS, archive_manifest


@dataclass(frozen=True)
class Row:
    """One resource in a listing."""

    name: str
    status: str
    created: str
    instances: str

    def describe(self) -> str:
        """The row as one aligned line."""
        return f"  {self.name:<63}  {self.status or '-':<11}  {self.created:<19}  {self.instances or '-'}"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


def variants_text(variants: list[dict[str, Any]]) -> str:
    """``ml.g4dn.xlarge x1`` or ``serverless 2048 MB, 5 at once`` per variant, comma separated."""
    parts = []
    for variant in variants:
        serverless = variant.get("ServerlessConfig") or variant.get("CurrentServerlessConfig")
        if serverless:
            parts.append(f"serverless {serverless['MemorySizeInMB']} MB, {serverless['MaxConcurrency']} at once")
        else:
            count = variant.get("CurrentInstanceCount", variant.get("InitialInstanceCount"))
            parts.append(f"{variant.get('InstanceType', '?')} x{count}")
    return ", ".join(parts)


def _endpoint_instances(clients: Clients, name: str) -> str:
    config = clients.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    return _config_instances(clients, config)


def _config_instances(clients: Clients, name: str) -> str:
    return variants_text(clients.sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"])


#: kind -> how to find the instance type of one resource (models have none)
_INSTANCES: dict[str, Callable[[Clients, str], str]] = {
    "training-jobs": lambda c, n: "{InstanceType} x{InstanceCount}".format(
        **c.sagemaker.describe_training_job(TrainingJobName=n)["ResourceConfig"]),
    "transform-jobs": lambda c, n: "{InstanceType} x{InstanceCount}".format(
        **c.sagemaker.describe_transform_job(TransformJobName=n)["TransformResources"]),
    "endpoint-configs": _config_instances,
    "endpoints": _endpoint_instances,
}


def list_rows(clients: Clients, name_contains: str = "smtx") -> dict[str, list[Row]]:
    """Every resource of each kind whose name contains ``name_contains``, newest first."""
    found: dict[str, list[Row]] = {}
    for kind, listing in LISTINGS.items():
        pages = clients.sagemaker.get_paginator(listing.operation).paginate(NameContains=name_contains)
        items = [item for page in pages for item in page.get(listing.items, [])
                 if name_contains in item[listing.name]]
        items.sort(key=lambda item: _when(item.get("CreationTime")), reverse=True)
        instances = _INSTANCES.get(kind)
        found[kind] = [Row(item[listing.name], str(item.get(listing.status, "")) if listing.status else "",
                           _when(item.get("CreationTime")),
                           instances(clients, item[listing.name]) if instances else "") for item in items]
    return found


def describe_endpoint(clients: Clients, endpoint: str) -> list[str]:
    """Lines for people: status, times, config, variants, async settings, autoscaling and tags."""
    sm = clients.sagemaker
    described = sm.describe_endpoint(EndpointName=endpoint)
    config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    lines = [f"endpoint {endpoint}: {described['EndpointStatus']}",
             f"created {_when(described.get('CreationTime'))}, modified {_when(described.get('LastModifiedTime'))}",
             f"config {config['EndpointConfigName']}"]
    if described.get("FailureReason"):
        lines.append(f"failure reason: {described['FailureReason']}")
    for variant in config["ProductionVariants"]:
        lines.append(f"variant {variant['VariantName']}: model {variant['ModelName']}, {variants_text([variant])}")
        lines.extend(_serving_lines(clients, variant["ModelName"]))
    output = (config.get("AsyncInferenceConfig") or {}).get("OutputConfig")
    if output:
        lines.append(f"asynchronous: answers to {output.get('S3OutputPath')}, errors to {output.get('S3FailurePath')}")
    capture = config.get("DataCaptureConfig") or {}
    if capture.get("EnableCapture", bool(capture)):
        lines.append(f"data capture: {capture.get('InitialSamplingPercentage')}% of requests and answers to "
                     f"{capture.get('DestinationS3Uri')}/{endpoint}/ (read with: python -m launcher drift {endpoint})")
    lines.extend(_scaling_lines(clients, endpoint, [v["VariantName"] for v in config["ProductionVariants"]]))
    tags = sm.list_tags(ResourceArn=described["EndpointArn"]).get("Tags", [])
    if tags:
        lines.append("tags: " + ", ".join(f"{t['Key']}={t['Value']}" for t in tags))
    return lines


def _serving_lines(clients: Clients, model: str) -> list[str]:
    """What the model's archive serves on a CPU: SMTX_PRECISION and the paths its serving.json gated, with scores."""
    try:
        container = clients.sagemaker.describe_model(ModelName=model).get("PrimaryContainer") or {}
    except ClientError as exc:
        return [f"  model {model}: not described ({error_code(exc)})"]
    data, environment = container.get("ModelDataUrl"), container.get("Environment") or {}
    if container.get("Mode") == "MultiModel" or not data:
        return ["  serves: each model's own serving.json (multi-model)"] if data else []
    requested = environment.get("SMTX_PRECISION", "auto")
    try:
        manifest = archive_manifest(clients.s3, data)
    except MANIFEST_READ_ERRORS as exc:
        return [f"  serves: SMTX_PRECISION={requested}; the archive's serving.json could not be read ({exc})"]
    if not manifest.paths:
        return [f"  serves: {manifest.runtime} fp32 (the archive gated no CPU paths: built before them, or torch)"]
    passed = ", ".join(f"{p.name} ({_scores(p.scores)})" for p in manifest.paths if p.passed)
    refused = "; ".join(f"{p.name}: {p.reason}" for p in manifest.paths if not p.passed)
    how = "the fastest passed path the instance's CPU runs natively" if requested == "auto" else "as named"
    lines = [f"  serves: SMTX_PRECISION={requested} ({how}; the endpoint's log line 'serving on the CPU ...' says "
             f"which)", f"  gated paths: {passed}"]
    return lines + ([f"  not served: {refused}"] if refused else [])


def _scores(scores: dict[str, Any] | None) -> str:
    if not scores:
        return "no scores"
    shown = [f"{split} {scores[split]:.4f}" for split in ("dev", "test") if scores.get(split) is not None]
    return f"{scores.get('metric', 'metric')} " + (" · ".join(shown) if shown else "not scored")


def _scaling_lines(clients: Clients, endpoint: str, variants: list[str]) -> list[str]:
    ids = [resource_id(endpoint, variant) for variant in variants]
    targets = clients.autoscaling.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=ids)
    lines = []
    for target in targets["ScalableTargets"]:
        policies = clients.autoscaling.describe_scaling_policies(ServiceNamespace=NAMESPACE,
                                                                 ResourceId=target["ResourceId"])["ScalingPolicies"]
        names = ", ".join(p["PolicyName"] for p in policies) or "no policy"
        lines.append(f"autoscaling {target['ResourceId']}: {target['MinCapacity']}-{target['MaxCapacity']} "
                     f"instances ({names})")
    return lines or ["autoscaling: none"]
