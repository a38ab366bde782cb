"""``pipeline create|start|describe NAME``: the flags and the handlers of the train -> evaluate -> register
pipeline (``launcher.pipeline``).

``create`` takes ``train``'s flags (the training job is built by the same code) plus the registry group, the
objective and its threshold; every setting and the data prefix are checked before the pipeline is created (or
updated, when it exists). ``start`` runs it, ``describe`` shows a run's steps and what it registered, or the
condition that failed and why. Exit status 0, or 2 for bad input.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

from launcher import pipeline
from launcher.cli import train
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, image_for, say
from launcher.errors import require
from launcher.jobs import data
from launcher.jobs.training import TrainingConfig
from launcher.s3 import S3Uri, ensure_bucket


def add_arguments(p: argparse.ArgumentParser, env: Env) -> None:
    """pipeline: create (train's flags and the objective), start, describe."""
    actions = p.add_subparsers(dest="action", required=True, metavar="{create,start,describe}")
    create = actions.add_parser("create", help="create (or update) the pipeline", allow_abbrev=False)
    create.add_argument("name", help="the pipeline's name")
    train.train_flags(create, env)
    gate = create.add_argument_group("evaluation and registration")
    gate.add_argument("--group", required=True, help="the model package group a passing run registers into")
    gate.add_argument("--objective", required=True, help="the test score to check, e.g. test_f1 (test_ and one of "
                                                         "the task's scores)")
    gate.add_argument("--threshold", type=float, required=True,
                      help="the ObjectiveThreshold parameter's default (start --threshold overrides it)")
    direction = gate.add_mutually_exclusive_group()
    direction.add_argument("--maximize", dest="maximize", action="store_true", default=None,
                           help="register when the objective is at least the threshold")
    direction.add_argument("--minimize", dest="maximize", action="store_false",
                           help="register when the objective is at most the threshold")
    gate.add_argument("--serving-image", default=env.get("SMTX_SERVING_IMAGE"),
                      help="the CPU serving image the registered version names (SMTX_SERVING_IMAGE)")
    gate.add_argument("--evaluation-instance-type", default="ml.m5.xlarge",
                      help="the evaluation step's (CPU) instance type (default ml.m5.xlarge)")
    start = actions.add_parser("start", help="start a run", allow_abbrev=False)
    start.add_argument("name")
    start.add_argument("--threshold", type=float, help="this run's ObjectiveThreshold (default: the pipeline's)")
    describe = actions.add_parser("describe", help="show a run's steps and outcome", allow_abbrev=False)
    describe.add_argument("name")
    describe.add_argument("--execution", help="a run's ARN (default: the latest run)")


#: ``train``'s own builder of its job config from its flags (``launcher.cli.train``), handed in by the command
#: table so that ``pipeline create`` reads train's flags the one way ``train`` does
TrainingConfigFor = Callable[[argparse.Namespace], tuple[TrainingConfig, Any]]


def handler(training_config: TrainingConfigFor) -> Callable[[argparse.Namespace], int]:
    """The ``pipeline`` handler, dispatching on the action."""
    def run(args: argparse.Namespace) -> int:
        if args.action == "create":
            return _create(args, config_for(args, training_config))
        return {"start": _start, "describe": _describe}[args.action](args)

    return run


def config_for(args: argparse.Namespace, training_config: TrainingConfigFor) -> pipeline.PipelineConfig:
    """The checked pipeline config from ``pipeline create``'s flags (no AWS call)."""
    require(args.data.startswith("s3://"), "data", args.data,
            "an s3:// prefix with train.csv, dev.csv and test.csv (python -m launcher upload puts a folder there)")
    training, _ = training_config(args)
    task = training.hyperparameters.task_name
    require(args.serving_image is not None, "serving_image", None, "--serving-image or SMTX_SERVING_IMAGE")
    maximize = args.maximize
    if maximize is None and args.objective in pipeline.objectives(task):
        maximize = pipeline.default_maximize(task, args.objective)
    return pipeline.PipelineConfig(
        name=args.name, training=training, group=args.group, objective=args.objective, threshold=args.threshold,
        maximize=bool(maximize), serving_image=args.serving_image,
        gpu_serving_image=args.gpu_image or args.env_gpu_image,
        evaluation_image=image_for(args, args.evaluation_instance_type, "--image or SMTX_TRAINING_IMAGE"),
        evaluation_instance_type=args.evaluation_instance_type)


def _create(args: argparse.Namespace, config: pipeline.PipelineConfig) -> int:
    clients = clients_for(args)
    data.check_uploaded(clients, config.training.data_uri)
    output = S3Uri.parse(config.training.output_uri)
    if ensure_bucket(clients.s3, output, clients.region, args.create_bucket):
        say(f"created bucket {output.bucket}")
    arn, created = pipeline.create_or_update(clients, config)
    say(f"{'created' if created else 'updated'} pipeline {arn}")
    direction = ">=" if config.maximize else "<="
    say(f"a run registers into {config.group} when {config.objective} {direction} {config.threshold:g}")
    say(f"start with: python -m launcher pipeline start {config.name}")
    return 0


def _start(args: argparse.Namespace) -> int:
    arn = pipeline.start(clients_for(args), args.name, args.threshold)
    say(f"started {arn}")
    say(f"follow with: python -m launcher pipeline describe {args.name}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    clients = clients_for(args)
    arn = args.execution or pipeline.latest_run(clients, args.name)
    for line in pipeline.describe_run(clients, arn).lines():
        say(line)
    return 0


COMMANDS = {
    "pipeline": Command("create, start or describe a train -> evaluate -> register SageMaker Pipeline",
                        add_arguments, handler(train.training_config)),
}
