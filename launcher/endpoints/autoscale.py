"""Autoscaling of an endpoint variant's instance count through Application Auto Scaling.

A real-time endpoint scales by target tracking on ``SageMakerVariantInvocationsPerInstance``. An asynchronous
endpoint tracks its queue instead (``ApproximateBacklogSizePerInstance``) and may scale to zero: with ``min 0``
a step scaling policy, fired by a CloudWatch alarm on ``HasBacklogWithoutCapacity``, starts the first instance
when requests wait and none runs (target tracking alone never scales out from zero). Serverless endpoints scale
by themselves and are refused.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code
from launcher.errors import SettingError, require

log = logging.getLogger(__name__)

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
DEFAULT_VARIANT = "AllTraffic"
MAX_INSTANCES = 100


def resource_id(endpoint: str, variant: str = DEFAULT_VARIANT) -> str:
    """Application Auto Scaling's id of an endpoint variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def alarm_name(endpoint: str, variant: str = DEFAULT_VARIANT) -> str:
    """The CloudWatch alarm that scales an async endpoint out from zero."""
    return f"{endpoint}-{variant}-backlog-without-capacity"


@dataclass(frozen=True)
class Scaling:
    """Bounds and target of one variant's autoscaling; ``target`` is invocations (or, async, backlog) per
    instance."""

    min_capacity: int
    max_capacity: int
    target: float
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60
    variant: str = DEFAULT_VARIANT

    def __post_init__(self) -> None:
        require(0 <= self.min_capacity <= MAX_INSTANCES, "min", self.min_capacity,
                f"an integer in [0, {MAX_INSTANCES}] (0 only for an asynchronous endpoint)")
        require(max(1, self.min_capacity) <= self.max_capacity <= MAX_INSTANCES, "max", self.max_capacity,
                f"an integer in [max(1, --min), {MAX_INSTANCES}]")
        require(self.target > 0, "target", self.target, "a number > 0 (per instance)")
        for field in ("scale_in_cooldown_s", "scale_out_cooldown_s"):
            require(0 <= getattr(self, field) <= 3600, field, getattr(self, field), "seconds in [0, 3600]")


def endpoint_kind(clients: Clients, endpoint: str, variant: str) -> str:
    """"async", "serverless" or "instances" for the endpoint's current config; SettingError when it or the
    variant does not exist."""
    try:
        config_name = clients.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except ClientError as exc:
        if error_code(exc) == "ValidationException":
            raise SettingError("endpoint", endpoint, "an existing endpoint") from None
        raise
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    require(variant in variants, "variant", variant, f"one of the endpoint's variants: {sorted(variants)}")
    if "ServerlessConfig" in variants[variant]:
        return "serverless"
    return "async" if config.get("AsyncInferenceConfig") else "instances"


def _metric(kind: str, endpoint: str) -> dict[str, Any]:
    if kind == "instances":
        return {"PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    return {"CustomizedMetricSpecification": {
        "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average"}}


def enable(clients: Clients, endpoint: str, scaling: Scaling, target_kind: str) -> list[str]:
    """Register the variant and put its policies; ``target_kind`` says which target the user gave
    ("invocations" or "backlog"), checked against the endpoint's kind first. One line per thing done."""
    kind = endpoint_kind(clients, endpoint, scaling.variant)
    require(kind != "serverless", "endpoint", endpoint, "an endpoint on instances (serverless ones scale alone)")
    wanted = "backlog" if kind == "async" else "invocations"
    require(target_kind == wanted, f"target_{target_kind}", scaling.target,
            f"--target-{wanted} for {'an asynchronous' if kind == 'async' else 'a real-time'} endpoint")
    require(scaling.min_capacity >= 1 or kind == "async", "min", scaling.min_capacity,
            "an integer >= 1 (only asynchronous endpoints scale to zero)")
    rid = resource_id(endpoint, scaling.variant)
    clients.autoscaling.register_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=rid,
                                                 ScalableDimension=DIMENSION, MinCapacity=scaling.min_capacity,
                                                 MaxCapacity=scaling.max_capacity)
    clients.autoscaling.put_scaling_policy(
        PolicyName=f"{endpoint}-{wanted}", ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": float(scaling.target), **_metric(kind, endpoint),
            "ScaleInCooldown": scaling.scale_in_cooldown_s, "ScaleOutCooldown": scaling.scale_out_cooldown_s})
    done = [f"{rid}: {scaling.min_capacity}-{scaling.max_capacity} instances, {scaling.target:g} {wanted} per "
            "instance"]
    if kind == "async" and scaling.min_capacity == 0:
        done.append(_scale_out_from_zero(clients, endpoint, scaling))
    return done


def _scale_out_from_zero(clients: Clients, endpoint: str, scaling: Scaling) -> str:
    rid = resource_id(endpoint, scaling.variant)
    policy = clients.autoscaling.put_scaling_policy(
        PolicyName=f"{endpoint}-from-zero", ServiceNamespace=NAMESPACE, ResourceId=rid,
        ScalableDimension=DIMENSION, PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
            "Cooldown": scaling.scale_out_cooldown_s,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    clients.cloudwatch.put_metric_alarm(
        AlarmName=alarm_name(endpoint, scaling.variant), MetricName="HasBacklogWithoutCapacity",
        Namespace="AWS/SageMaker", Statistic="Average", EvaluationPeriods=2, DatapointsToAlarm=2, Period=60,
        Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}], AlarmActions=[policy["PolicyARN"]])
    return f"alarm {alarm_name(endpoint, scaling.variant)} starts an instance when requests wait and none runs"


def remove_scaling(clients: Clients, endpoint: str) -> list[str]:
    """Delete the policies, the scale-from-zero alarm and the scaling target of every variant of ``endpoint``;
    one line per thing removed (nothing when it had no autoscaling)."""
    done: list[str] = []
    pages = clients.autoscaling.get_paginator("describe_scalable_targets").paginate(ServiceNamespace=NAMESPACE)
    for target in [t for page in pages for t in page["ScalableTargets"]]:
        rid = target["ResourceId"]
        if not rid.startswith(f"endpoint/{endpoint}/variant/"):
            continue
        policies = clients.autoscaling.describe_scaling_policies(ServiceNamespace=NAMESPACE, ResourceId=rid)
        for policy in policies["ScalingPolicies"]:
            clients.autoscaling.delete_scaling_policy(PolicyName=policy["PolicyName"], ServiceNamespace=NAMESPACE,
                                                      ResourceId=rid, ScalableDimension=DIMENSION)
        alarm = alarm_name(endpoint, rid.rsplit("/", 1)[-1])
        if clients.cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]:
            clients.cloudwatch.delete_alarms(AlarmNames=[alarm])
            done.append(f"deleted alarm {alarm}")
        clients.autoscaling.deregister_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=rid,
                                                       ScalableDimension=DIMENSION)
        done.append(f"removed autoscaling of {rid}")
    return done
