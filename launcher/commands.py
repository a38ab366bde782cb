"""One handler per command: turn parsed flags into typed configs, call the API, print what people need.

Printing is the command line's job; the API below only logs. Each handler returns the exit status.
"""
from __future__ import annotations

import argparse
import json
from typing import Callable

from launcher import cleanup, data, deploy, follow, invoke, multimodel, training, transform
from launcher.aws import AwsSettings, Clients
from launcher.errors import ConfigError
from launcher.hyperparameters import SPECS, Hyperparameters
from launcher.local_transform import run_local_transform
from launcher.names import unique_name
from launcher.s3 import S3Uri
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
        raise ConfigError(name, value, SOURCES[name])
    return str(value)


def _clients(args: argparse.Namespace) -> Clients:
    return Clients(AwsSettings(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url))


def _poller(args: argparse.Namespace, interval_s: float) -> Poller:
    return Poller(interval_s=interval_s if args.poll_s is None else args.poll_s,
                  timeout_s=48 * 3600.0 if args.timeout_s is None else args.timeout_s)


def _serving(args: argparse.Namespace) -> deploy.ServingConfig:
    extra = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(extra) != len(args.env):
        raise ConfigError("env", args.env, "NAME=VALUE items")
    knobs = {name: getattr(args, name) for name in deploy.ENVIRONMENT}
    return deploy.ServingConfig(image_uri=_need(args, "image"), role_arn=_need(args, "role"),
                                instance_type=args.instance_type, instance_count=args.instance_count,
                                extra_environment=extra, **knobs)


def _validate(args: argparse.Namespace) -> int:
    rows = data.validate_folder(args.folder, args.task, args.use_bbox)
    say(f"{args.folder}: valid for {args.task} ({', '.join(f'{k} {v} rows' for k, v in rows.items())})")
    return 0


def _upload(args: argparse.Namespace) -> int:
    uploaded = data.upload_dataset(_clients(args), args.folder, args.task, _need(args, "s3_prefix"), args.use_bbox)
    say(uploaded.uri)
    return 0


def _training_config(args: argparse.Namespace, clients: Clients) -> training.TrainingConfig:
    prefix = S3Uri.parse(_need(args, "s3_prefix"), "s3_prefix")
    hyperparameters = Hyperparameters(**{name: getattr(args, name) for name in SPECS})
    data_uri = args.data
    if not data_uri.startswith("s3://"):
        data_uri = data.upload_dataset(clients, args.data, args.task_name, str(prefix.join("data")),
                                       bool(args.use_bbox)).uri
        say(f"uploaded {args.data} to {data_uri}")
    checkpoints = args.checkpoint_uri or (str(prefix.join("checkpoints")) if args.spot else None)
    return training.TrainingConfig(
        image_uri=_need(args, "image"), role_arn=_need(args, "role"), data_uri=data_uri,
        output_uri=str(prefix.join("output")), hyperparameters=hyperparameters, instance_type=args.instance_type,
        instance_count=args.instance_count, volume_gb=args.volume_gb, max_runtime_s=args.max_runtime_s,
        spot=args.spot, max_wait_s=args.max_wait_s, checkpoint_uri=checkpoints)


def _train(args: argparse.Namespace) -> int:
    clients = _clients(args)
    name = training.start_training_job(clients, _training_config(args, clients))
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


def _source(args: argparse.Namespace) -> str:
    return str(args.training_job or args.model_data)


def _report_deployment(made: deploy.Deployment) -> int:
    say(f"endpoint {made.endpoint} (config {made.endpoint_config}, model {made.model}) serving {made.model_data}")
    say(f"delete with: python -m launcher delete --endpoint {made.endpoint}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    return _report_deployment(deploy.deploy(_clients(args), _source(args), _serving(args),
                                            _poller(args, 15.0), emit=say, wait=args.wait))


def _deploy_multi(args: argparse.Namespace) -> int:
    return _report_deployment(multimodel.deploy_multi_model(_clients(args), args.model_prefix, _serving(args),
                                                            _poller(args, 15.0), emit=say, wait=args.wait))


def _add_model(args: argparse.Namespace) -> int:
    target = multimodel.add_model(_clients(args), _source(args), args.model_prefix, args.name)
    say(f"added {target}; invoke with --target-model {target}")
    return 0


def _invoke(args: argparse.Namespace) -> int:
    records = [{"text": t} for t in args.text] if args.text else invoke.read_records(args.file)
    predictions = invoke.invoke(_clients(args), args.endpoint, records, args.content_type, args.target_model)
    for prediction in predictions:
        say(json.dumps(prediction, ensure_ascii=False))
    return 0


def _transform(args: argparse.Namespace) -> int:
    if args.local:
        summary = run_local_transform(args.input, args.output, args.url, args.max_payload_mb, args.concurrency,
                                      progress=True)
        say(summary.describe())
        return 0 if summary.ok else 1
    clients = _clients(args)
    model = args.model or _transform_model(args, clients)
    config = transform.TransformConfig(model_name=model, instance_type=args.instance_type,
                                       instance_count=args.instance_count, max_payload_mb=args.max_payload_mb,
                                       max_concurrent_transforms=args.max_concurrent)
    report = transform.run_transform(clients, args.input, _need(args, "s3_prefix"), config, args.output,
                                     _poller(args, 30.0), emit=say)
    say(f"transform job {report.job_name}: {report.output_uri} -> {report.output_path}")
    say(report.check.describe())
    return 0 if report.ok else 1


def _transform_model(args: argparse.Namespace, clients: Clients) -> str:
    if not (args.training_job or args.model_data):
        raise ConfigError("model", None, "--model NAME, --training-job JOB or --model-data URI")
    name = unique_name("smtx-model")
    model_data = deploy.resolve_model_data(clients, _source(args))
    deploy.create_model(clients, name, _serving(args), {"ModelDataUrl": model_data, "Mode": "SingleModel"})
    say(f"created model {name} (delete with: python -m launcher delete --model {name})")
    return name


def _delete(args: argparse.Namespace) -> int:
    if not (args.endpoint or args.model):
        raise ConfigError("delete", None, "at least one --endpoint or --model")
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


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _validate, "upload": _upload, "train": _train, "follow": _follow, "stop": _stop,
    "deploy": _deploy, "deploy-multi": _deploy_multi, "add-model": _add_model, "invoke": _invoke,
    "transform": _transform, "delete": _delete, "list": _list,
}

