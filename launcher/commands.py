"""The command table: for each command its help, its flags (``launcher.arguments``) and its handler.

A handler turns parsed flags into typed configs, checks every setting before it creates anything (no orphan
model, S3 folder or job when a later flag is wrong), calls the API and prints what people need. Printing is the
command line's job; the API below only logs. Each handler returns the exit status.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from launcher import (
    arguments,
    data,
    deploy,
    drift_cli,
    endpoint_commands,
    follow,
    pipeline_cli,
    registry_cli,
    training,
    transform,
)
from launcher.aws import Clients
from launcher.checks import existing_file, writable_path
from launcher.cleanup import model_exists
from launcher.command_support import (
    clients_for,
    image_for,
    need,
    object_tagging_for,
    placement_for,
    poller_for,
    say,
    serving_for,
)
from launcher.endpoint_commands import source_of
from launcher.errors import SettingError, require
from launcher.hyperparameters import FIELDS, Hyperparameters
from launcher.images import default_batch_sizes
from launcher.inventory import list_rows
from launcher.local_transform import run_local_transform
from launcher.model_folder import check_model_name
from launcher.names import unique_name
from launcher.s3 import S3Uri, ensure_bucket
from launcher.s3_cleanup import confirm, delete_written, find_written
from training.config import EMBEDDED_MODEL


def _validate(args: argparse.Namespace) -> int:
    rows = data.validate_folder(args.folder, args.task, args.use_bbox)
    say(f"{args.folder}: valid for {args.task} ({', '.join(f'{k} {v} rows' for k, v in rows.items())})")
    return 0


def _upload(args: argparse.Namespace) -> int:
    plan = data.plan_upload(args.folder, args.task, need(args, "s3_prefix"), args.use_bbox)
    tagging = object_tagging_for(args, "upload")
    clients = clients_for(args)
    if ensure_bucket(clients.s3, S3Uri.parse(plan.uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(plan.uri).bucket}")
    say(data.upload_planned(clients, plan, tagging).uri)
    return 0


def _hyperparameters(args: argparse.Namespace) -> Hyperparameters:
    """The flags' hyperparameters; on a GPU instance, batch sizes the user left unset follow the architecture."""
    values = {name: getattr(args, name) for name in FIELDS}
    defaults = default_batch_sizes(values.get("model_name") or EMBEDDED_MODEL, args.instance_type)
    for name, size in defaults.items():
        if values.get(name) is None:
            values[name] = size
    return Hyperparameters(**values)


def _training_config(args: argparse.Namespace) -> tuple[training.TrainingConfig, data.UploadedData | None]:
    """The job's config, every setting checked, and the upload it needs (planned and validated, not done)."""
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


def _train(args: argparse.Namespace) -> int:
    config, plan = _training_config(args)
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


def _follow(args: argparse.Namespace) -> int:
    return _follow_job(args, clients_for(args), args.job)


def _follow_job(args: argparse.Namespace, clients: Clients, name: str) -> int:
    result = follow.follow_training_job(clients, name, poller_for(args, 30.0), emit=say)
    say(result.describe())
    return 0 if result.ok else 1


def _stop(args: argparse.Namespace) -> int:
    training.stop_training_job(clients_for(args), args.job)
    say(f"asked {args.job} to stop")
    return 0


def _transform(args: argparse.Namespace) -> int:
    existing_file(args.input, "input")
    if args.local:
        summary = run_local_transform(args.input, writable_path(args.output, "output"), args.url,
                                      args.max_payload_mb, args.concurrency, progress=True)
        say(summary.describe())
        return 0 if summary.ok else 1
    prefix = S3Uri.parse(need(args, "s3_prefix"), "s3_prefix")
    create = None if args.model else _model_to_create(args)
    placement = create[1].placement if create else placement_for(args)
    config = transform.TransformConfig(model_name=args.model or unique_name("smtx-model"),
                                       instance_type=args.instance_type or "ml.g4dn.xlarge",
                                       instance_count=1 if args.instance_count is None else args.instance_count,
                                       max_payload_mb=args.max_payload_mb,
                                       max_concurrent_transforms=args.max_concurrent, placement=placement)
    if args.wait:
        writable_path(args.output, "output")
    clients = clients_for(args)
    # the model's archive (or the existing model) is looked for before the bucket, the input or a model is made
    model_data = deploy.resolve_model_data(clients, create[0]) if create else None
    require(create is not None or model_exists(clients, config.model_name), "model", config.model_name,
            "an existing SageMaker model (python -m launcher list shows them), or --training-job / --model-data")
    if ensure_bucket(clients.s3, prefix, clients.region, args.create_bucket):
        say(f"created bucket {prefix.bucket}")
    if create is not None:
        _, serving = create
        deploy.create_model(clients, config.model_name, serving, {"ModelDataUrl": model_data, "Mode": "SingleModel"},
                            "transform")
        say(f"created model {config.model_name} (delete with: python -m launcher delete --model {config.model_name})")
    if not args.wait:
        started = transform.start_transform(clients, args.input, str(prefix), config)
        say(f"transform job {started.job_name}: {started.input_uri} -> {started.output_uri}")
        say(f"follow with: python -m launcher follow-transform {started.job_name}")
        return 0
    report = transform.run_transform(clients, args.input, str(prefix), config, args.output, poller_for(args, 30.0),
                                     emit=say)
    say(f"transform job {report.job_name}: {report.output_uri} -> {report.output_path}")
    say(report.check.describe())
    return 0 if report.ok else 1


def _model_to_create(args: argparse.Namespace) -> tuple[str, deploy.ServingConfig]:
    """The model source and serving settings of the model a transform creates, both checked."""
    if not (args.training_job or args.model_data):
        raise SettingError("model", None, "--model NAME, --training-job JOB or --model-data s3://bucket/key.tar.gz")
    return source_of(args), serving_for(args)


def _follow_transform(args: argparse.Namespace) -> int:
    described = transform.follow_transform(clients_for(args), args.job, poller_for(args, 30.0), emit=say)
    say(f"transform job {args.job}: output in {described['TransformOutput']['S3OutputPath']}")
    return 0


def _stop_transform(args: argparse.Namespace) -> int:
    transform.stop_transform_job(clients_for(args), args.job)
    say(f"asked {args.job} to stop")
    return 0


def _list(args: argparse.Namespace) -> int:
    for kind, rows in list_rows(clients_for(args), args.name_contains).items():
        say(f"{kind}: {len(rows)}")
        for row in rows:
            say(row.describe())
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    prefix, clients = S3Uri.parse(need(args, "s3_prefix"), "s3_prefix"), clients_for(args)
    written = find_written(clients.s3, prefix)
    for folder in written:
        say(f"{folder.uri}  {len(folder.keys)} objects, {folder.size / 1e6:.1f} MB")
    if not written:
        say(f"nothing the launcher wrote under {prefix}")
        return 0
    question = f"delete {sum(len(w.keys) for w in written)} objects in {len(written)} folders?"
    if args.dry_run or not confirm(question, args.yes):
        say("nothing deleted")
        return 0
    say(f"deleted {delete_written(clients.s3, written)} objects")
    return 0


@dataclass(frozen=True)
class Command:
    """One command of ``python -m launcher``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser, arguments.Env], None]
    run: Callable[[argparse.Namespace], int]


_E = endpoint_commands
#: the one command table: the parser and the dispatch both read it
COMMANDS: dict[str, Command] = {
    "validate": Command("check a data folder with the training validator", arguments.data, _validate),
    "upload": Command("validate a data folder and upload it to S3", arguments.upload, _upload),
    "train": Command("start a training job and follow it", arguments.train, _train),
    "follow": Command("follow a training job until it ends", arguments.job, _follow),
    "stop": Command("stop a training job", arguments.job, _stop),
    "deploy": Command("deploy a model on a new endpoint (real-time, --serverless or --async), or update one in "
                      "place (--endpoint); --model-package: an Approved registry version", arguments.deploy,
                      registry_cli.run_deploy),
    "deploy-multi": Command("create a multi-model endpoint", arguments.deploy_multi, _E.run_deploy_multi),
    "add-model": Command("add a model to a multi-model endpoint's prefix", arguments.add_model, _E.run_add_model),
    "invoke": Command("send records to an endpoint and print the predictions", arguments.invoke, _E.run_invoke),
    "invoke-async": Command("queue a request on an asynchronous endpoint (--wait: print its answer)",
                            arguments.invoke_async, _E.run_invoke_async),
    "autoscale": Command("scale an endpoint's instances with its traffic (or --off)", arguments.autoscale,
                         _E.run_autoscale),
    "describe": Command("show an endpoint: status, variants, async settings, autoscaling, tags", arguments.endpoint,
                        _E.run_describe),
    "logs": Command("print an endpoint's or a transform job's CloudWatch log lines", arguments.logs, _E.run_logs),
    "transform": Command("batch transform a jsonlines file, on SageMaker or --local", arguments.transform,
                         _transform),
    "follow-transform": Command("follow a transform job until it ends", arguments.transform_job, _follow_transform),
    "stop-transform": Command("stop a transform job", arguments.transform_job, _stop_transform),
    "delete": Command("delete endpoints (autoscaling, config and models too) or models", arguments.delete,
                      _E.run_delete),
    "list": Command("list jobs, models, endpoints and model package versions with creation time, instances and "
                    "status", registry_cli.list_arguments(arguments.listing), registry_cli.with_packages(_list)),
    "cleanup": Command("delete the S3 folders the launcher wrote (data, transform files, async inputs)",
                       arguments.cleanup, _cleanup),
    "drift": Command("compare an endpoint's captured answers (or a transform --local output) with the test split",
                     drift_cli.add_arguments, drift_cli.run),
    "register": Command("register a model.tar.gz as a new Model Registry version (PendingManualApproval) with its "
                        "metrics and model card", registry_cli.register_arguments, registry_cli.run_register),
    "approve": Command("approve a model package version (deploy --model-package then serves it)",
                       registry_cli.approval_arguments, registry_cli.run_approve),
    "reject": Command("reject a model package version", registry_cli.approval_arguments, registry_cli.run_reject),
    "pipeline": Command("create, start or describe a train -> evaluate -> register SageMaker Pipeline",
                        pipeline_cli.add_arguments, pipeline_cli.handler(_training_config)),
}
