"""``train``, ``follow`` and ``stop``: a training job started from flags (one per hyperparameter), followed to its
end, or stopped.

The hyperparameter flags are made from TrainConfig's fields, so ``train --help`` shows each one with its doc,
bounds and default.
"""
from __future__ import annotations

import argparse

from launcher.aws import Clients
from launcher.checks import DEFAULT_INSTANCE
from launcher.cli import flags
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, image_for, need, placement_for, poller_for, say
from launcher.images import default_batch_sizes
from launcher.jobs import data, follow, training
from launcher.jobs.hyperparameters import FIELDS, Hyperparameters
from launcher.jobs.model_folder import check_model_name
from launcher.s3 import S3Uri, ensure_bucket
from training.config import EMBEDDED_MODEL

#: hyperparameters that also answer to a shorter flag, shared with the data commands
_ALIASES = {"task_name": "--task"}


def train_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """train: data, resources, spot, and one flag per hyperparameter."""
    p.add_argument("--data", required=True, help="s3:// prefix with the three files, or a local folder to upload")
    flags.prefix(p, env, "prefix for uploaded data, model output and checkpoints", creates=True)
    flags.images(p, env, "SMTX_TRAINING_IMAGE")
    p.add_argument("--role", default=env.get("SMTX_SAGEMAKER_ROLE"), help="execution role (SMTX_SAGEMAKER_ROLE)")
    p.add_argument("--instance-type", default=DEFAULT_INSTANCE)
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--volume-gb", type=int, default=30)
    p.add_argument("--max-runtime-s", type=int, default=24 * 3600)
    p.add_argument("--spot", action="store_true", help="managed spot training (checkpoints under the prefix)")
    p.add_argument("--max-wait-s", type=int, help="spot only: capacity wait plus runtime")
    p.add_argument("--checkpoint-uri", help="spot: checkpoint prefix (default {s3-prefix}/checkpoints)")
    flags.placement(p, env)
    hyper = p.add_argument_group("hyperparameters (training.config.TrainConfig; unset ones keep its default)")
    for name, declared in FIELDS.items():
        names = ["--" + name.replace("_", "-")] + ([_ALIASES[name]] if name in _ALIASES else [])
        described = declared.describe().replace("%", "%%")  # argparse formats help with %: "~20% slower"
        if declared.kind is bool:
            hyper.add_argument(*names, action=argparse.BooleanOptionalAction, default=None, help=described)
        else:
            hyper.add_argument(*names, type=declared.kind, required=declared.required, choices=declared.choices,
                               help=described)
    p.add_argument("--no-wait", dest="wait", action="store_false", help="return once the job has started")


def job_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """follow / stop: a training job."""
    p.add_argument("job", help="training job name")


def _hyperparameters(args: argparse.Namespace) -> Hyperparameters:
    """The flags' hyperparameters; on a GPU instance, batch sizes the user left unset follow the architecture."""
    values = {name: getattr(args, name) for name in FIELDS}
    defaults = default_batch_sizes(values.get("model_name") or EMBEDDED_MODEL, args.instance_type)
    for name, size in defaults.items():
        if values.get(name) is None:
            values[name] = size
    return Hyperparameters(**values)


def training_config(args: argparse.Namespace) -> tuple[training.TrainingConfig, data.UploadedData | None]:
    """The job's config, every setting checked, and the upload it needs (planned and validated, not done); tune's
    trials are this job too."""
    prefix = S3Uri.parse(need(args, "s3_prefix"), "s3_prefix")
    hyperparameters = _hyperparameters(args)
    check_model_name(hyperparameters.values.get("model_name"))  # a local folder, before any upload or job
    image = image_for(args, args.instance_type, "--image or SMTX_TRAINING_IMAGE")
    plan = None
    if not args.data.startswith("s3://"):
        plan = data.plan_upload(args.data, hyperparameters.task_name, str(prefix.join("data")),
                                bool(hyperparameters.values.get("use_bbox")))
    checkpoints = args.checkpoint_uri or (str(prefix.join("checkpoints")) if args.spot else None)
    config = training.TrainingConfig(
        image_uri=image, role_arn=need(args, "role"), data_uri=plan.uri if plan else args.data,
        output_uri=str(prefix.join("output")), hyperparameters=hyperparameters, instance_type=args.instance_type,
        instance_count=args.instance_count, volume_gb=args.volume_gb, max_runtime_s=args.max_runtime_s,
        spot=args.spot, max_wait_s=args.max_wait_s, checkpoint_uri=checkpoints, placement=placement_for(args))
    return config, plan


def run_train(args: argparse.Namespace) -> int:
    """train: every setting checked, then the upload (if a local folder), the job, and with waiting its end."""
    config, plan = training_config(args)
    tagging = config.placement.object_tagging("train") if plan is not None else None  # S3's limit, checked now
    clients = clients_for(args)
    if plan is None:
        data.check_uploaded(clients, config.data_uri)
    if ensure_bucket(clients.s3, S3Uri.parse(config.output_uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(config.output_uri).bucket}")
    if plan is not None:
        say(f"uploaded {args.data} to {data.upload_planned(clients, plan, tagging).uri}")
    name = training.start_training_job(clients, config)
    say(f"training job {name}")
    return _follow_job(args, clients, name) if args.wait else 0


def run_follow(args: argparse.Namespace) -> int:
    """follow: a training job's status and log lines until it ends; exit 1 unless it Completed."""
    return _follow_job(args, clients_for(args), args.job)


def _follow_job(args: argparse.Namespace, clients: Clients, name: str) -> int:
    result = follow.follow_training_job(clients, name, poller_for(args, 30.0), emit=say)
    say(result.describe())
    return 0 if result.ok else 1


def run_stop(args: argparse.Namespace) -> int:
    """stop: ask SageMaker to stop a training job."""
    training.stop_training_job(clients_for(args), args.job)
    say(f"asked {args.job} to stop")
    return 0


COMMANDS = {
    "train": Command("start a training job and follow it", train_flags, run_train),
    "follow": Command("follow a training job until it ends", job_flags, run_follow),
    "stop": Command("stop a training job", job_flags, run_stop),
}
