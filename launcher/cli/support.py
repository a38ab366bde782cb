"""What every command handler shares: the table row, output, required settings, clients, pollers, images,
placement, the model source and the serving config, each made from parsed flags and checked before anything is
created."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

from launcher.aws import AwsSettings, Clients
from launcher.checks import DEFAULT_INSTANCE
from launcher.cli.flags import Env
from launcher.endpoints import deploy
from launcher.endpoints import serverless as serverless_rules
from launcher.endpoints.asynchronous import Asynchronous
from launcher.endpoints.capture import Capture
from launcher.endpoints.serverless import Serverless
from launcher.errors import SettingError, require
from launcher.images import Images
from launcher.placement import Placement, parse_tags
from launcher.waiting import Poller

#: where a missing required value can come from, for the error message
SOURCES = {"role": "--role or SMTX_SAGEMAKER_ROLE", "s3_prefix": "--s3-prefix or SMTX_S3_PREFIX"}


@dataclass(frozen=True)
class Command:
    """One command of ``python -m launcher``: its help, its flags and its handler (which returns the exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser, Env], None]
    run: Callable[[argparse.Namespace], int]


def say(text: str) -> None:
    """Command line output (progress events, results)."""
    print(text, flush=True)


def need(args: argparse.Namespace, name: str) -> str:
    """A required setting, or SettingError saying where it can come from."""
    value = getattr(args, name)
    if not value:
        raise SettingError(name, value, SOURCES[name])
    return str(value)


def clients_for(args: argparse.Namespace) -> Clients:
    """The AWS clients for the global flags."""
    return Clients(AwsSettings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url))


def poller_for(args: argparse.Namespace, interval_s: float) -> Poller:
    """The poller for the global --poll-s / --timeout-s flags."""
    return Poller(interval_s=interval_s if args.poll_s is None else args.poll_s,
                  timeout_s=48 * 3600.0 if args.timeout_s is None else args.timeout_s)


def placement_for(args: argparse.Namespace) -> Placement:
    """Tags, VPC, KMS key and network isolation from --tag, --subnet, --security-group, --kms-key,
    --network-isolation."""
    return Placement(tags=parse_tags(args.tag), subnets=tuple(args.subnet), security_groups=tuple(args.security_group),
                     kms_key=args.kms_key, network_isolation=args.network_isolation)


def object_tagging_for(args: argparse.Namespace, command: str) -> str:
    """The S3 Tagging of the objects a command with only --tag (no VPC or KMS flags) writes."""
    return Placement(tags=parse_tags(args.tag)).object_tagging(command)


def image_for(args: argparse.Namespace, instance_type: str | None, cpu_source: str) -> str:
    """The image for ``instance_type``: --image when given, else the CPU or the GPU image by instance type (None:
    no instances, serverless, which runs the CPU image)."""
    images = Images(cpu=args.cpu_image, gpu=args.gpu_image or args.env_gpu_image, explicit=args.image,
                    cpu_source=cpu_source)
    return images.pick(instance_type)


def source_of(args: argparse.Namespace) -> str:
    """The one model source given (--training-job or --model-data), checked for its form."""
    return deploy.model_source(args.training_job, args.model_data)


def report_deployment(made: deploy.Deployment, updated: bool = False) -> int:
    """Print what a deploy made (or updated) and how to delete it; exit status 0."""
    verb = "updated" if updated else "endpoint"
    say(f"{verb} {made.endpoint} (config {made.endpoint_config}, model {made.model}) serving {made.model_data}")
    say(f"delete with: python -m launcher delete --endpoint {made.endpoint}")
    return 0


def _kind(args: argparse.Namespace) -> tuple[Serverless | None, Asynchronous | None]:
    """The endpoint kind the deploy flags ask for; flags of another kind are refused, naming them."""
    serverless_rules.check_flags(args.serverless, args.memory_mb, args.max_concurrency)
    async_flags = {"output": args.output, "success_topic": args.success_topic, "error_topic": args.error_topic,
                   "max_concurrent_invocations": args.max_concurrent_invocations}
    for flag, value in async_flags.items():
        require(args.asynchronous or value is None, flag, value, "no value without --async")
    if args.serverless:
        serverless_rules.check_not_async(args.asynchronous)
        return serverless_rules.from_flags(args.memory_mb, args.max_concurrency), None
    if args.asynchronous:
        require(args.output is not None, "output", None, "an s3:// prefix for the answers with --async")
        return None, Asynchronous(args.output, args.success_topic, args.error_topic, args.max_concurrent_invocations)
    return None, None


def serving_for(args: argparse.Namespace) -> deploy.ServingConfig:
    """The checked serving config of deploy, deploy-multi and a transform's model."""
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(extra) != len(args.env):
        raise SettingError("env", args.env, "NAME=VALUE items")
    knobs: dict[str, Any] = {name: getattr(args, name) for name in deploy.ENVIRONMENT}
    serverless, asynchronous = _kind(args) if hasattr(args, "serverless") else (None, None)
    if serverless is not None:
        # only the flags tell a count or a GPU image given from none: ServingConfig sees the defaults
        serverless_rules.check_no_instances(args.instance_type, args.instance_count, args.gpu_image)
        instance_type, count = None, 1
        image = image_for(args, None, "--image or SMTX_SERVING_IMAGE")
    else:
        # an explicit 0 is refused by the config's check, never read as "unset"
        instance_type = args.instance_type or DEFAULT_INSTANCE
        count = 1 if args.instance_count is None else args.instance_count
        image = image_for(args, instance_type, "--image or SMTX_SERVING_IMAGE")
    return deploy.ServingConfig(image_uri=image, role_arn=need(args, "role"), instance_type=instance_type,
                                instance_count=count, extra_environment=extra, serverless=serverless,
                                asynchronous=asynchronous, capture=_capture(args), placement=placement_for(args),
                                **knobs)


def _capture(args: argparse.Namespace) -> Capture | None:
    """deploy's --capture (other commands have no such flag); --capture-percent alone is refused."""
    uri, percent = getattr(args, "capture", None), getattr(args, "capture_percent", None)
    require(uri is not None or percent is None, "capture_percent", percent, "no value without --capture s3://...")
    return Capture(uri, 100 if percent is None else percent) if uri is not None else None
