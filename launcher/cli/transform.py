"""``transform``, ``follow-transform`` and ``stop-transform``: a jsonlines file through SageMaker Batch Transform
(over an existing model, or one made from a training job or an archive) or through a local server (``--local``)."""
from __future__ import annotations

import argparse

from launcher.checks import DEFAULT_INSTANCE, existing_file, writable_path
from launcher.cli import flags
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, need, placement_for, poller_for, say, serving_for, source_of
from launcher.endpoints import deploy
from launcher.endpoints.cleanup import model_exists
from launcher.errors import SettingError, require
from launcher.jobs import transform
from launcher.jobs.local_transform import run_local_transform
from launcher.names import unique_name
from launcher.s3 import S3Uri, ensure_bucket


def transform_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """transform: input and output, then either a local server or a SageMaker model."""
    p.add_argument("--input", required=True, help="jsonlines file, one record per line")
    p.add_argument("--output", required=True, help="where to write the answers, one line per input line")
    p.add_argument("--local", action="store_true", help="send to a running server instead of SageMaker")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="--local: the server (POST {url}/invocations)")
    p.add_argument("--concurrency", type=int, default=4, help="--local: requests in flight")
    p.add_argument("--max-payload-mb", type=int, default=6)
    p.add_argument("--model", help="an existing SageMaker model (or give --training-job / --model-data)")
    flags.model_source(p, required=False)
    flags.serving(p, env, waits=False)  # image and role: only to create a model from --training-job / --model-data
    flags.prefix(p, env, "where the job's input and output go", creates=True)
    p.add_argument("--max-concurrent", type=int, default=2, help="SageMaker: requests in flight per instance")
    p.add_argument("--no-wait", dest="wait", action="store_false",
                   help="SageMaker: return once the job has started (then follow-transform JOB)")


def transform_job_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """follow-transform / stop-transform: a transform job."""
    p.add_argument("job", help="transform job name")


def run_transform(args: argparse.Namespace) -> int:
    """transform: every setting checked, the model looked for (or made), then the job; with waiting, its output
    downloaded and checked line by line."""
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
                                       instance_type=args.instance_type or DEFAULT_INSTANCE,
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


def run_follow_transform(args: argparse.Namespace) -> int:
    """follow-transform: a transform job's status and log lines until it ends."""
    described = transform.follow_transform(clients_for(args), args.job, poller_for(args, 30.0), emit=say)
    say(f"transform job {args.job}: output in {described['TransformOutput']['S3OutputPath']}")
    return 0


def run_stop_transform(args: argparse.Namespace) -> int:
    """stop-transform: ask SageMaker to stop a transform job."""
    transform.stop_transform_job(clients_for(args), args.job)
    say(f"asked {args.job} to stop")
    return 0


COMMANDS = {
    "transform": Command("batch transform a jsonlines file, on SageMaker or --local", transform_flags, run_transform),
    "follow-transform": Command("follow a transform job until it ends", transform_job_flags, run_follow_transform),
    "stop-transform": Command("stop a transform job", transform_job_flags, run_stop_transform),
}
