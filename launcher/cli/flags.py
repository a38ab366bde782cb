"""The groups of flags several commands take: a model source, images, tags and placement, serving, an S3 prefix.

A command's own flags live with its handler (``launcher.cli.<group>``). Flags fall back to the environment where a
laptop usually keeps them: SMTX_SAGEMAKER_ROLE, SMTX_TRAINING_IMAGE, SMTX_SERVING_IMAGE (the CPU images),
SMTX_GPU_IMAGE and SMTX_S3_PREFIX (the AWS variables are boto3's).
"""
from __future__ import annotations

import argparse
from typing import Mapping

from launcher.checks import DEFAULT_INSTANCE

Env = Mapping[str, str]
_SERVING_KNOBS = (("--workers", "TorchServe workers per model"), ("--batch-size", "TorchServe batch size"),
                  ("--max-batch-delay-ms", "TorchServe max batch delay"),
                  ("--response-timeout-s", "TorchServe response timeout"),
                  ("--model-server-timeout-s", "model server timeout"))


def model_source(p: argparse.ArgumentParser, required: bool = True, package: bool = False,
                 tuning: bool = False) -> None:
    """--training-job or --model-data (one of them), or with ``package`` --model-package (and --force), or with
    ``tuning`` --tuning-job (its best trial, ``launcher.cli.tune``)."""
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--training-job", help="the name of a Completed training job whose model to use")
    source.add_argument("--model-data", help="the s3://bucket/key URI of a model.tar.gz")
    if package:
        source.add_argument("--model-package", help="a Model Registry version ARN (launcher.cli.registry); it "
                                                    "must be Approved")
        p.add_argument("--force", action="store_true", help="deploy a --model-package version that is not Approved")
    if tuning:
        source.add_argument("--tuning-job", help="a Completed (or Stopped) tuning job: deploy its best trial")


def images(p: argparse.ArgumentParser, env: Env, cpu_variable: str) -> None:
    """--image (any instance) and --gpu-image; unset, the image follows the instance type."""
    p.add_argument("--image", help=f"the image to run on any instance type (default: {cpu_variable} on CPU "
                                   "instances, --gpu-image on ml.g*/ml.p* instances)")
    p.add_argument("--gpu-image", help="the GPU image, for ml.g* and ml.p* instances (default: SMTX_GPU_IMAGE)")
    p.set_defaults(cpu_image=env.get(cpu_variable), env_gpu_image=env.get("SMTX_GPU_IMAGE"))


def tags(group: argparse._ActionsContainer) -> None:
    """--tag: of every resource and S3 object the command creates."""
    group.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                       help="tag every resource and S3 object created (repeatable); smtx:created-by and "
                            "smtx:command are added")


def placement(p: argparse.ArgumentParser, env: Env) -> None:
    """Tags, VPC, KMS key and network isolation of what the command creates."""
    group = p.add_argument_group("account hygiene")
    tags(group)
    group.add_argument("--subnet", action="append", default=[], help="VPC subnet id (repeatable; with "
                                                                      "--security-group)")
    group.add_argument("--security-group", action="append", default=[], help="VPC security group id (repeatable)")
    group.add_argument("--kms-key", help="KMS key for ML volumes and S3 output (id, ARN or alias/NAME)")
    group.add_argument("--network-isolation", action="store_true", help="no network access from the container")


def serving(p: argparse.ArgumentParser, env: Env, waits: bool = True) -> None:
    """Image, role, instances, TorchServe settings and placement of a model."""
    images(p, env, "SMTX_SERVING_IMAGE")
    p.add_argument("--role", default=env.get("SMTX_SAGEMAKER_ROLE"), help="execution role (SMTX_SAGEMAKER_ROLE)")
    p.add_argument("--instance-type", help=f"ml.* instance type (default {DEFAULT_INSTANCE})")
    p.add_argument("--instance-count", type=int, help="instances (default 1)")
    placement(p, env)
    for flag, help_text in _SERVING_KNOBS:
        p.add_argument(flag, type=int, help=f"{help_text} (container default when unset)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra container environment")
    if waits:
        p.add_argument("--no-wait", dest="wait", action="store_false", help="return once creation has started")


def prefix(p: argparse.ArgumentParser, env: Env, help_text: str, creates: bool = False) -> None:
    """--s3-prefix (and --create-bucket where the command writes there)."""
    p.add_argument("--s3-prefix", default=env.get("SMTX_S3_PREFIX"), help=f"{help_text} (SMTX_S3_PREFIX)")
    if creates:
        p.add_argument("--create-bucket", action="store_true",
                       help="create the prefix's bucket when it does not exist (in --region)")
