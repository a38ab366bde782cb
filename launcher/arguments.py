"""The flags of each command (``launcher.commands.COMMANDS`` says which command gets which).

Flags fall back to the environment where a laptop usually keeps them: SMTX_SAGEMAKER_ROLE, SMTX_TRAINING_IMAGE,
SMTX_SERVING_IMAGE (the CPU images), SMTX_GPU_IMAGE and SMTX_S3_PREFIX (the AWS variables are boto3's). The
training flags are made from TrainConfig's fields, so ``train --help`` shows each hyperparameter with its doc,
bounds and default.
"""
from __future__ import annotations

import argparse
from typing import Mapping

from launcher.hyperparameters import FIELDS

Env = Mapping[str, str]
_SERVING_KNOBS = (("--workers", "TorchServe workers per model"), ("--batch-size", "TorchServe batch size"),
                  ("--max-batch-delay-ms", "TorchServe max batch delay"),
                  ("--response-timeout-s", "TorchServe response timeout"),
                  ("--model-server-timeout-s", "model server timeout"))
#: hyperparameters that also answer to a shorter flag, shared with the data commands
_ALIASES = {"task_name": "--task"}


def model_source(p: argparse.ArgumentParser, required: bool = True, package: bool = False) -> None:
    """--training-job or --model-data (one of them), or with ``package`` --model-package (and --force)."""
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--training-job", help="the name of a Completed training job whose model to use")
    source.add_argument("--model-data", help="the s3://bucket/key URI of a model.tar.gz")
    if package:
        source.add_argument("--model-package", help="a Model Registry version ARN (launcher.registry_cli); it "
                                                    "must be Approved")
        p.add_argument("--force", action="store_true", help="deploy a --model-package version that is not Approved")


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
    p.add_argument("--instance-type", help="ml.* instance type (default ml.g4dn.xlarge)")
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


def data(p: argparse.ArgumentParser, env: Env) -> None:
    """validate: a data folder and its task."""
    p.add_argument("folder", help="folder with train.csv, dev.csv and test.csv")
    p.add_argument("--task", required=True, choices=FIELDS["task_name"].choices)
    p.add_argument("--use-bbox", action="store_true", help="the files carry a bbox column (LayoutLM)")


def upload(p: argparse.ArgumentParser, env: Env) -> None:
    """upload: a data folder and where it goes."""
    data(p, env)
    prefix(p, env, "where to upload", creates=True)
    tags(p)


def train(p: argparse.ArgumentParser, env: Env) -> None:
    """train: data, resources, spot, and one flag per hyperparameter."""
    p.add_argument("--data", required=True, help="s3:// prefix with the three files, or a local folder to upload")
    prefix(p, env, "prefix for uploaded data, model output and checkpoints", creates=True)
    images(p, env, "SMTX_TRAINING_IMAGE")
    p.add_argument("--role", default=env.get("SMTX_SAGEMAKER_ROLE"), help="execution role (SMTX_SAGEMAKER_ROLE)")
    p.add_argument("--instance-type", default="ml.g4dn.xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--volume-gb", type=int, default=30)
    p.add_argument("--max-runtime-s", type=int, default=24 * 3600)
    p.add_argument("--spot", action="store_true", help="managed spot training (checkpoints under the prefix)")
    p.add_argument("--max-wait-s", type=int, help="spot only: capacity wait plus runtime")
    p.add_argument("--checkpoint-uri", help="spot: checkpoint prefix (default {s3-prefix}/checkpoints)")
    placement(p, env)
    hyper = p.add_argument_group("hyperparameters (training.config.TrainConfig; unset ones keep its default)")
    for name, declared in FIELDS.items():
        flags = ["--" + name.replace("_", "-")] + ([_ALIASES[name]] if name in _ALIASES else [])
        if declared.kind is bool:
            hyper.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=declared.describe())
        else:
            hyper.add_argument(*flags, type=declared.kind, required=declared.required, choices=declared.choices,
                               help=declared.describe())
    p.add_argument("--no-wait", dest="wait", action="store_false", help="return once the job has started")


def job(p: argparse.ArgumentParser, env: Env) -> None:
    """follow / stop: a training job."""
    p.add_argument("job", help="training job name")


def transform_job(p: argparse.ArgumentParser, env: Env) -> None:
    """follow-transform / stop-transform: a transform job."""
    p.add_argument("job", help="transform job name")


def deploy(p: argparse.ArgumentParser, env: Env) -> None:
    """deploy: a model source, how to serve it, and where (a new endpoint, or --endpoint to update)."""
    model_source(p, package=True)
    serving(p, env)
    p.add_argument("--endpoint", help="update this existing endpoint in place instead of creating one")
    serverless = p.add_argument_group("serverless inference")
    serverless.add_argument("--serverless", action="store_true", help="serverless endpoint (no instances, no GPU)")
    serverless.add_argument("--memory-mb", type=int, help="1024-6144 in steps of 1024")
    serverless.add_argument("--max-concurrency", type=int, help="concurrent invocations, 1-200")
    later = p.add_argument_group("asynchronous inference")
    later.add_argument("--async", dest="asynchronous", action="store_true", help="asynchronous endpoint")
    later.add_argument("--output", help="s3:// prefix for the answers (errors go to {output}/failures/)")
    later.add_argument("--success-topic", help="SNS topic ARN told of each answer")
    later.add_argument("--error-topic", help="SNS topic ARN told of each error")
    later.add_argument("--max-concurrent-invocations", type=int, help="requests per instance at once (1-1000)")
    capture = p.add_argument_group("data capture (real-time and asynchronous endpoints; read by `drift`)")
    capture.add_argument("--capture", metavar="S3_URI", help="capture requests and answers under this s3:// prefix")
    capture.add_argument("--capture-percent", type=int, help="share of requests captured, 1-100 (default 100)")


def invoke_async(p: argparse.ArgumentParser, env: Env) -> None:
    """invoke-async: an endpoint, an input file or S3 object, and whether to wait for the answer."""
    p.add_argument("endpoint")
    p.add_argument("--input", required=True, help="a local .jsonl/.json file (uploaded) or an s3:// URI")
    p.add_argument("--content-type", choices=["json", "jsonlines"], help="default: from the input's suffix")
    prefix(p, env, "where a local input is uploaded")
    p.add_argument("--wait", action="store_true", help="poll S3 until the answer or the error appears, print it")
    tags(p)


def autoscale(p: argparse.ArgumentParser, env: Env) -> None:
    """autoscale: bounds and target of an endpoint variant, or --off."""
    p.add_argument("endpoint")
    p.add_argument("--variant", default="AllTraffic")
    p.add_argument("--off", action="store_true", help="remove the endpoint's autoscaling")
    p.add_argument("--min", type=int, help="fewest instances (0 only for an asynchronous endpoint)")
    p.add_argument("--max", type=int, help="most instances")
    p.add_argument("--target-invocations", type=float, help="real-time: invocations per instance per minute")
    p.add_argument("--target-backlog", type=float, help="asynchronous: queued requests per instance")
    p.add_argument("--scale-in-cooldown", type=int, default=300, help="seconds (default 300)")
    p.add_argument("--scale-out-cooldown", type=int, default=60, help="seconds (default 60)")


def endpoint(p: argparse.ArgumentParser, env: Env) -> None:
    """describe: an endpoint."""
    p.add_argument("endpoint")


def logs(p: argparse.ArgumentParser, env: Env) -> None:
    """logs: an endpoint's or a transform job's CloudWatch lines."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--endpoint", help="an endpoint")
    which.add_argument("--transform-job", help="a transform job")
    p.add_argument("--follow", action="store_true", help="keep printing new lines (a transform: until it ends)")


def cleanup(p: argparse.ArgumentParser, env: Env) -> None:
    """cleanup: the launcher's S3 folders under the prefix."""
    prefix(p, env, "the prefix to clean")
    p.add_argument("--yes", action="store_true", help="delete without asking (needed without a terminal)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")


def deploy_multi(p: argparse.ArgumentParser, env: Env) -> None:
    """deploy-multi: the prefix the endpoint serves from, and how to serve."""
    p.add_argument("--model-prefix", required=True, help="s3:// prefix the endpoint serves model.tar.gz files from")
    serving(p, env)


def add_model(p: argparse.ArgumentParser, env: Env) -> None:
    """add-model: a model source, the endpoint's prefix and the archive's name there."""
    model_source(p)
    p.add_argument("--model-prefix", required=True, help="the multi-model endpoint's s3:// prefix")
    p.add_argument("--name", help="TargetModel name ending with .tar.gz (default: from the source)")
    tags(p)


def invoke(p: argparse.ArgumentParser, env: Env) -> None:
    """invoke: an endpoint and the records to send."""
    p.add_argument("endpoint")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", action="append", help="a text to predict on (repeatable)")
    given.add_argument("--file", help=".jsonl, .json or .txt file of records")
    p.add_argument("--content-type", default="json", choices=["json", "jsonlines"])
    p.add_argument("--target-model", help="multi-model endpoints: which .tar.gz to use")
    p.add_argument("--allow-errors", action="store_true",
                   help="exit 0 even when some records are answered with an error object")


def transform(p: argparse.ArgumentParser, env: Env) -> None:
    """transform: input and output, then either a local server or a SageMaker model."""
    p.add_argument("--input", required=True, help="jsonlines file, one record per line")
    p.add_argument("--output", required=True, help="where to write the answers, one line per input line")
    p.add_argument("--local", action="store_true", help="send to a running server instead of SageMaker")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="--local: the server (POST {url}/invocations)")
    p.add_argument("--concurrency", type=int, default=4, help="--local: requests in flight")
    p.add_argument("--max-payload-mb", type=int, default=6)
    p.add_argument("--model", help="an existing SageMaker model (or give --training-job / --model-data)")
    model_source(p, required=False)
    serving(p, env, waits=False)  # image and role: only to create a model from --training-job / --model-data
    prefix(p, env, "where the job's input and output go", creates=True)
    p.add_argument("--max-concurrent", type=int, default=2, help="SageMaker: requests in flight per instance")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="SageMaker: return once the job has started (then follow-transform JOB)")


def delete(p: argparse.ArgumentParser, env: Env) -> None:
    """delete: endpoints and models."""
    p.add_argument("--endpoint", action="append", default=[], help="endpoint (with its config and models)")
    p.add_argument("--model", action="append", default=[], help="model")


def listing(p: argparse.ArgumentParser, env: Env) -> None:
    """list: a name filter."""
    p.add_argument("--name-contains", default="smtx")
