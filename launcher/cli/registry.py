"""``register``, ``approve``, ``reject``, ``list --group`` and ``deploy --model-package``: the flags and the
handlers of the Model Registry commands, over ``launcher.registry``.

Every flag is checked, the archive looked for and its task spec and metrics read before anything is created: a
refusal leaves no group, no version, no S3 object and no model card. Exit status 0, or 2 for bad input (an
unapproved version given to ``deploy`` without ``--force`` included).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any, Callable

from launcher import registry
from launcher.aws import Clients
from launcher.checks import DEFAULT_INSTANCE
from launcher.cli.flags import Env, images, tags
from launcher.cli.support import Command, clients_for, object_tagging_for, say
from launcher.endpoints.deploy import resolve_model_data
from launcher.errors import SettingError, require
from launcher.images import is_gpu_instance
from launcher.inventory import Row
from launcher.placement import Placement, parse_tags

Handler = Callable[[argparse.Namespace], int]


def register_arguments(p: argparse.ArgumentParser, env: Env) -> None:
    """register: the archive, the group, where the facts come from, the images and tags."""
    p.add_argument("--model-data", required=True, help="the s3://bucket/key URI of a model.tar.gz")
    p.add_argument("--group", required=True, help="the model package group (created when it does not exist)")
    p.add_argument("--checkpoint", help="the local checkpoint folder the archive was made from (default: read "
                                        "task_spec.json and metrics.json out of the archive)")
    p.add_argument("--description", help="the version's description (at most 1024 characters)")
    images(p, env, "SMTX_SERVING_IMAGE")
    tags(p)


def run_register(args: argparse.Namespace) -> int:
    """register: a new version, PendingManualApproval, with its metrics and model card."""
    group = registry.check_group(args.group)
    registry.check_text(args.description, "description")
    cpu_image = args.image or args.cpu_image
    require(bool(cpu_image), "image", cpu_image, "--image or SMTX_SERVING_IMAGE (the CPU serving image)")
    gpu_image = args.gpu_image or args.env_gpu_image
    registry.check_images(cpu_image, gpu_image)
    placement = Placement(tags=parse_tags(args.tag))
    object_tagging_for(args, "register")  # S3's 10-tag limit, before anything is written
    clients = clients_for(args)
    model_data = resolve_model_data(clients, args.model_data)
    facts = registry.read_checkpoint(args.checkpoint) if args.checkpoint else registry.read_archive(
        clients.s3, model_data)
    made = registry.register(clients, group, model_data, facts, cpu_image, gpu_image, args.description, placement)
    if made.group_created:
        say(f"created model package group {group}")
    say(f"registered {made.arn} (version {made.number}, {registry.PENDING})")
    say(f"metrics: {made.metrics_uri}; model card: {made.card}")
    say(f"approve with: python -m launcher approve {made.arn} --reason TEXT")
    return 0


def approval_arguments(p: argparse.ArgumentParser, env: Env) -> None:
    """approve / reject: a version and why."""
    p.add_argument("version", help="the model package version ARN")
    p.add_argument("--reason", required=True, help="why (kept as the version's ApprovalDescription)")


def approval_handler(status: str) -> Handler:
    """The handler that sets ``status`` (Approved or Rejected)."""
    def run(args: argparse.Namespace) -> int:
        registry.check_version_arn(args.version)
        registry.check_text(args.reason, "reason", required=True)
        before = registry.set_approval(clients_for(args), args.version, status, args.reason)
        say(f"{args.version}: {before} -> {status} ({args.reason})")
        return 0

    return run


run_approve, run_reject = approval_handler(registry.APPROVED), approval_handler(registry.REJECTED)


def list_arguments(add: Callable[[argparse.ArgumentParser, Env], None]) -> Callable[[argparse.ArgumentParser, Env],
                                                                                      None]:
    """``list``'s flags plus --group."""
    def arguments(p: argparse.ArgumentParser, env: Env) -> None:
        add(p, env)
        p.add_argument("--group", help="only this model package group's versions, with their approval status")

    return arguments


def with_packages(run_list: Handler) -> Handler:
    """``list``: the resources ``run_list`` prints, then the model package groups and their versions; with
    --group only that group's versions."""
    def run(args: argparse.Namespace) -> int:
        clients = clients_for(args)
        if args.group:
            registry.check_group(args.group)
            require(registry.group_exists(clients, args.group), "group", args.group,
                    "an existing model package group (python -m launcher list shows them)")
            _print_versions(clients, args.group)
            return 0
        status = run_list(args)
        groups = registry.list_groups(clients)
        say(f"model-package-groups: {len(groups)}")
        for group in groups:
            say(Row(group["ModelPackageGroupName"], group.get("ModelPackageGroupStatus", ""),
                    _when(group.get("CreationTime")), "").describe())
            _print_versions(clients, group["ModelPackageGroupName"], indent="    ")
        return status

    return run


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")


def _print_versions(clients: Clients, group: str, indent: str = "  ") -> None:
    versions = registry.list_versions(clients, group)
    if not versions:
        say(f"{indent}no versions in {group}")
    for version in versions:
        say(f"{indent}{version['ModelPackageArn']}  {version.get('ModelApprovalStatus', '?'):<21}  "
            f"{_when(version.get('CreationTime'))}  {version.get('ModelPackageDescription', '')}")


def resolve_package(args: argparse.Namespace) -> None:
    """deploy: without --model-package, only the check that --force comes with it; with it, the version's image
    for this instance kind and its archive put in place of the model source and images the usual deploy reads,
    once the version is Approved (or --force)."""
    if not args.model_package:
        require(not args.force, "force", True, "--force only with --model-package ARN")
        return
    registry.check_version_arn(args.model_package)
    given = [flag for flag, value in (("--image", args.image), ("--gpu-image", args.gpu_image)) if value]
    require(not given, "image", given, "no --image or --gpu-image with --model-package (the version's images "
                                       "are what was approved)")
    clients = clients_for(args)
    described = registry.describe_version(clients, args.model_package)
    status = str(described.get("ModelApprovalStatus", registry.PENDING))
    if status != registry.APPROVED and not args.force:
        raise SettingError("model_package", args.model_package, "an Approved version", message=(
            f"model package {args.model_package} is {status}, not Approved: approve it first (python -m launcher "
            "approve ARN --reason TEXT) or pass --force"))
    if status != registry.APPROVED:
        print(f"warning: deploying {args.model_package}, which is {status} (--force)", file=sys.stderr)
    gpu = not args.serverless and is_gpu_instance(args.instance_type or DEFAULT_INSTANCE)
    image, model_data = registry.deployable(described, gpu)
    args.image, args.gpu_image = None, None
    args.cpu_image, args.env_gpu_image = (None, image) if gpu else (image, None)
    args.model_data, args.training_job = model_data, None
    say(f"deploying {args.model_package} ({status}): {image} serving {model_data}")


COMMANDS = {
    "register": Command("register a model.tar.gz as a new Model Registry version (PendingManualApproval) with its "
                        "metrics and model card", register_arguments, run_register),
    "approve": Command("approve a model package version (deploy --model-package then serves it)",
                       approval_arguments, run_approve),
    "reject": Command("reject a model package version", approval_arguments, run_reject),
}
