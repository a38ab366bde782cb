"""The command table: for each command its help, its flags (``launcher.arguments``) and its handler.

A handler turns parsed flags into typed configs, checks every setting before it creates anything (no orphan
model, S3 folder or job when a later flag is wrong), calls the API and prints what people need. Printing is the
command line's job; the API below only logs. Each handler returns the exit status.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable

from launcher import arguments, cleanup, data, deploy, follow, invoke, multimodel, training, transform
from launcher.aws import AwsSettings, Clients
from launcher.checks import existing_file, writable_path
from launcher.errors import SettingError
from launcher.hyperparameters import FIELDS, Hyperparameters
from launcher.local_transform import run_local_transform
from launcher.names import unique_name
from launcher.s3 import S3Uri, ensure_bucket
from launcher.waiting import Poller

#: where a missing required value can come from, for the error message
SOURCES = {"role": "--role or SMTX_SAGEMAKER_ROLE", "image": "--image or SMTX_TRAINING_IMAGE / SMTX_SERVING_IMAGE",
           "s3_prefix": "--s3-prefix or SMTX_S3_PREFIX"}


def say(text: str) -> None:
    """Command line output (progress events, results)."""
    print(text, flush=True)


def _need(args: argparse.Namespace, name: str) -> str:
    value = getattr(args, name)
    if not value:
        raise SettingError(name, value, SOURCES[name])
    return str(value)


def _clients(args: argparse.Namespace) -> Clients:
    return Clients(AwsSettings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url))


def _poller(args: argparse.Namespace, interval_s: float) -> Poller:
    return Poller(interval_s=interval_s if args.poll_s is None else args.poll_s,
                  timeout_s=48 * 3600.0 if args.timeout_s is None else args.timeout_s)


def _serving(args: argparse.Namespace) -> deploy.ServingConfig:
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(extra) != len(args.env):
        raise SettingError("env", args.env, "NAME=VALUE items")
    knobs = {name: getattr(args, name) for name in deploy.ENVIRONMENT}
    return deploy.ServingConfig(image_uri=_need(args, "image"), role_arn=_need(args, "role"),
                                instance_type=args.instance_type, instance_count=args.instance_count,
                                extra_environment=extra, **knobs)


def _source(args: argparse.Namespace) -> str:
    return deploy.model_source(args.training_job, args.model_data)


def _validate(args: argparse.Namespace) -> int:
    rows = data.validate_folder(args.folder, args.task, args.use_bbox)
    say(f"{args.folder}: valid for {args.task} ({', '.join(f'{k} {v} rows' for k, v in rows.items())})")
    return 0


def _upload(args: argparse.Namespace) -> int:
    plan = data.plan_upload(args.folder, args.task, _need(args, "s3_prefix"), args.use_bbox)
    clients = _clients(args)
    if ensure_bucket(clients.s3, S3Uri.parse(plan.uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(plan.uri).bucket}")
    say(data.upload_planned(clients, plan).uri)
    return 0


def _training_config(args: argparse.Namespace) -> tuple[training.TrainingConfig, data.UploadedData | None]:
    """The job's config, every setting checked, and the upload it needs (planned and validated, not done)."""
    prefix = S3Uri.parse(_need(args, "s3_prefix"), "s3_prefix")
    hyperparameters = Hyperparameters(**{name: getattr(args, name) for name in FIELDS})
    plan = None
    if not args.data.startswith("s3://"):
        plan = data.plan_upload(args.data, hyperparameters.task_name, str(prefix.join("data")),
                                bool(hyperparameters.values.get("use_bbox")))
    checkpoints = args.checkpoint_uri or (str(prefix.join("checkpoints")) if args.spot else None)
    config = training.TrainingConfig(
        image_uri=_need(args, "image"), role_arn=_need(args, "role"), data_uri=plan.uri if plan else args.data,
        output_uri=str(prefix.join("output")), hyperparameters=hyperparameters, instance_type=args.instance_type,
        instance_count=args.instance_count, volume_gb=args.volume_gb, max_runtime_s=args.max_runtime_s,
        spot=args.spot, max_wait_s=args.max_wait_s, checkpoint_uri=checkpoints)
    return config, plan


def _train(args: argparse.Namespace) -> int:
    config, plan = _training_config(args)
    clients = _clients(args)
    if ensure_bucket(clients.s3, S3Uri.parse(config.output_uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(config.output_uri).bucket}")
    if plan is not None:
        say(f"uploaded {args.data} to {data.upload_planned(clients, plan).uri}")
    name = training.start_training_job(clients, config)
    say(f"training job {name}")
    return _follow_job(args, clients, name) if args.wait else 0


def _follow(args: argparse.Namespace) -> int:
    return _follow_job(args, _clients(args), args.job)


def _follow_job(args: argparse.Namespace, clients: Clients, name: str) -> int:
    result = follow.follow_training_job(clients, name, _poller(args, 30.0), emit=say)
    say(result.describe())
    return 0 if result.ok else 1


def _stop(args: argparse.Namespace) -> int:
    training.stop_training_job(_clients(args), args.job)
    say(f"asked {args.job} to stop")
    return 0


def _report_deployment(made: deploy.Deployment) -> int:
    say(f"endpoint {made.endpoint} (config {made.endpoint_config}, model {made.model}) serving {made.model_data}")
    say(f"delete with: python -m launcher delete --endpoint {made.endpoint}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    source, serving = _source(args), _serving(args)
    return _report_deployment(deploy.deploy(_clients(args), source, serving, _poller(args, 15.0), emit=say,
                                            wait=args.wait))


def _deploy_multi(args: argparse.Namespace) -> int:
    prefix, serving, clients = S3Uri.parse(args.model_prefix, "model_prefix"), _serving(args), _clients(args)
    ensure_bucket(clients.s3, prefix, clients.region)
    return _report_deployment(multimodel.deploy_multi_model(clients, str(prefix), serving, _poller(args, 15.0),
                                                            emit=say, wait=args.wait))


def _add_model(args: argparse.Namespace) -> int:
    source, prefix, clients = _source(args), S3Uri.parse(args.model_prefix, "model_prefix"), _clients(args)
    ensure_bucket(clients.s3, prefix, clients.region)
    target = multimodel.add_model(clients, source, str(prefix), args.name)
    say(f"added {target}; invoke with --target-model {target}")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    records = [{"text": t} for t in args.text] if args.text else invoke.read_records(args.file)
    predictions = invoke.invoke(_clients(args), args.endpoint, records, args.content_type, args.target_model)
    for prediction in predictions:
        say(json.dumps(prediction, ensure_ascii=False))
    refused = invoke.error_records(predictions)
    if refused and not args.allow_errors:
        shown = ", ".join(map(str, refused[:20])) + (", ..." if len(refused) > 20 else "")
        print(f"{len(refused)} of {len(records)} records were answered with an error (records {shown}); "
              "pass --allow-errors to exit 0 anyway", file=sys.stderr)
        return 1
    return 0


def _transform(args: argparse.Namespace) -> int:
    existing_file(args.input, "input")
    if args.local:
        summary = run_local_transform(args.input, writable_path(args.output, "output"), args.url,
                                      args.max_payload_mb, args.concurrency, progress=True)
        say(summary.describe())
        return 0 if summary.ok else 1
    prefix = S3Uri.parse(_need(args, "s3_prefix"), "s3_prefix")
    create = None if args.model else _model_to_create(args)
    config = transform.TransformConfig(model_name=args.model or unique_name("smtx-model"),
                                       instance_type=args.instance_type, instance_count=args.instance_count,
                                       max_payload_mb=args.max_payload_mb,
                                       max_concurrent_transforms=args.max_concurrent)
    clients = _clients(args)
    if ensure_bucket(clients.s3, prefix, clients.region, args.create_bucket):
        say(f"created bucket {prefix.bucket}")
    if create is not None:
        source, serving = create
        model_data = deploy.resolve_model_data(clients, source)
        deploy.create_model(clients, config.model_name, serving, {"ModelDataUrl": model_data, "Mode": "SingleModel"})
        say(f"created model {config.model_name} (delete with: python -m launcher delete --model {config.model_name})")
    report = transform.run_transform(clients, args.input, str(prefix), config, args.output, _poller(args, 30.0),
                                     emit=say)
    say(f"transform job {report.job_name}: {report.output_uri} -> {report.output_path}")
    say(report.check.describe())
    return 0 if report.ok else 1


def _model_to_create(args: argparse.Namespace) -> tuple[str, deploy.ServingConfig]:
    """The model source and serving settings of the model a transform creates, both checked."""
    if not (args.training_job or args.model_data):
        raise SettingError("model", None, "--model NAME, --training-job JOB or --model-data s3://bucket/key.tar.gz")
    return _source(args), _serving(args)


def _delete(args: argparse.Namespace) -> int:
    if not (args.endpoint or args.model):
        raise SettingError("delete", None, "at least one --endpoint or --model")
    clients = _clients(args)
    for endpoint in args.endpoint:
        for line in cleanup.delete_endpoint(clients, endpoint):
            say(line)
    for model in args.model:
        say(cleanup.delete_model(clients, model))
    return 0


def _list(args: argparse.Namespace) -> int:
    for kind, rows in cleanup.list_resources(_clients(args), args.name_contains).items():
        say(f"{kind}: {len(rows)}")
        for name, status in rows:
            say(f"  {name}" + (f"  {status}" if status else ""))
    return 0


@dataclass(frozen=True)
class Command:
    """One command of ``python -m launcher``."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser, arguments.Env], None]
    run: Callable[[argparse.Namespace], int]


#: the one command table: the parser and the dispatch both read it
COMMANDS: dict[str, Command] = {
    "validate": Command("check a data folder with the training validator", arguments.data, _validate),
    "upload": Command("validate a data folder and upload it to S3", arguments.upload, _upload),
    "train": Command("start a training job and follow it", arguments.train, _train),
    "follow": Command("follow a training job until it ends", arguments.job, _follow),
    "stop": Command("stop a training job", arguments.job, _stop),
    "deploy": Command("deploy a model on a real-time endpoint", arguments.deploy, _deploy),
    "deploy-multi": Command("create a multi-model endpoint", arguments.deploy_multi, _deploy_multi),
    "add-model": Command("add a model to a multi-model endpoint's prefix", arguments.add_model, _add_model),
    "invoke": Command("send records to an endpoint and print the predictions", arguments.invoke, _invoke),
    "transform": Command("batch transform a jsonlines file, on SageMaker or --local", arguments.transform,
                         _transform),
    "delete": Command("delete endpoints (with config and models) or models", arguments.delete, _delete),
    "list": Command("list jobs, models and endpoints", arguments.listing, _list),
}
