"""``tune``, ``follow-tuning`` and ``stop-tuning``: flags and handlers (the API: ``launcher.jobs.tuning``).

``tune`` takes every flag of ``train`` (data, image, role, instances, placement, and the hyperparameters that stay
fixed), plus what to search: ``--range`` per tuned hyperparameter, the objective and the budget. Every setting,
each range against TrainConfig's declaration and the objective against the task's logged metrics, is checked
before anything is uploaded or created. ``deploy --tuning-job NAME`` deploys the best trial (``resolve_tuning_job``).

Exit status: 0 started (or, followed, Completed), 1 the tuning job Failed or was Stopped, 2 bad input.
"""
from __future__ import annotations

import argparse
import dataclasses

from launcher.aws import Clients
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, poller_for, say
from launcher.cli.train import train_flags, training_config
from launcher.errors import require
from launcher.jobs import data, tuning, tuning_ranges
from launcher.jobs.hyperparameters import Hyperparameters
from launcher.names import NAME_PATTERN
from launcher.s3 import S3Uri, ensure_bucket
from tasks.kinds import task_kind


def add_arguments(p: argparse.ArgumentParser, env: Env) -> None:
    """tune: train's flags (the fixed hyperparameters among them) and the search."""
    train_flags(p, env)
    search = p.add_argument_group("the search (SageMaker automatic model tuning)")
    search.add_argument("--objective", help="the metric to optimise, one the task logs for dev (default: the "
                                            "task's primary one, e.g. dev_f1 for ner, dev_mse for regression)")
    direction = search.add_mutually_exclusive_group()
    direction.add_argument("--maximize", dest="maximize", action="store_const", const=True, default=None)
    direction.add_argument("--minimize", dest="maximize", action="store_const", const=False,
                           help="the objective's direction (needed unless it is the task's primary metric or a loss)")
    search.add_argument("--range", action="append", default=[], metavar="NAME=LO:HI[:log]|NAME=A,B,C",
                        help="a tuned hyperparameter (repeatable): lo:hi for int and float fields, with :log, "
                             ":linear or :reverse-log scaling; a,b,c for any field. Bounds: train --help")
    search.add_argument("--max-jobs", type=int, required=True, help="training jobs in all")
    search.add_argument("--max-parallel", type=int, default=1, help="training jobs at once (default 1)")
    search.add_argument("--strategy", choices=list(tuning.STRATEGIES), default="bayesian")
    search.add_argument("--max-resource", type=int, help="hyperband: the dev lines a trial logs, one per "
                                                         "evaluation plus the final report (eval_steps 0 and "
                                                         "--max-steps: 4 + 1)")
    search.add_argument("--early-stopping", choices=["off", "auto"], default="off",
                        help="auto: SageMaker stops trials unlikely to beat the best (not with hyperband)")
    search.add_argument("--warm-start", action="append", default=[], metavar="TUNING_JOB",
                        help="a finished tuning job whose trials seed this search (repeatable, at most 5)")


def job(p: argparse.ArgumentParser, env: Env) -> None:
    """follow-tuning / stop-tuning: a tuning job."""
    p.add_argument("job", help="tuning job name")


def _tuning_config(args: argparse.Namespace) -> tuple[tuning.TuningConfig, data.UploadedData | None]:
    """The tuning job's config and the upload it needs, every setting checked, nothing written."""
    ranged = {item.split("=", 1)[0].strip() for item in args.range}
    training, plan = training_config(args)
    task = training.hyperparameters.task_name
    # a value the user gave stays fixed (and a range on it is refused); one only defaulted here (the GPU batch
    # sizes) gives way to its range
    static = {name: value for name, value in training.hyperparameters.values.items()
              if name != "task_name" and not (name in ranged and getattr(args, name, None) is None)}
    ranges = tuple(tuning_ranges.parse_range(item, task, static) for item in args.range)
    objective = args.objective or f"dev_{task_kind(task).primary_metric}"
    config = tuning.TuningConfig(
        training=dataclasses.replace(training, hyperparameters=Hyperparameters(task, **static)),
        objective=objective, direction=tuning_ranges.objective_direction(task, objective, args.maximize), ranges=ranges,
        max_jobs=args.max_jobs, max_parallel=args.max_parallel, strategy=args.strategy,
        early_stopping=args.early_stopping == "auto", warm_start=tuple(args.warm_start),
        max_resource=args.max_resource)
    return config, plan


def run_tune(args: argparse.Namespace) -> int:
    """tune: check everything, upload a local data folder, start the tuning job (and follow it)."""
    config, plan = _tuning_config(args)
    tagging = config.training.placement.object_tagging("tune") if plan is not None else None
    clients = clients_for(args)
    if plan is None:
        data.check_uploaded(clients, config.training.data_uri)
    if config.warm_start:
        config = dataclasses.replace(config, warm_start_type=tuning.warm_start_type(clients, config.warm_start,
                                                                                    config.training))
    if ensure_bucket(clients.s3, S3Uri.parse(config.training.output_uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(config.training.output_uri).bucket}")
    if plan is not None:
        say(f"uploaded {args.data} to {data.upload_planned(clients, plan, tagging).uri}")
    name = tuning.start_tuning_job(clients, config)
    say(f"tuning job {name}: {config.direction.lower()} {config.objective} over "
        f"{', '.join(r.name for r in config.ranges)}, {config.max_jobs} jobs, {config.max_parallel} at once")
    if not args.wait:
        say(f"follow with: python -m launcher follow-tuning {name}")
        return 0
    return _follow(args, clients, name)


def run_follow(args: argparse.Namespace) -> int:
    """follow-tuning: each trial and the best so far, until the tuning job ends."""
    return _follow(args, clients_for(args), args.job)


def _follow(args: argparse.Namespace, clients: Clients, name: str) -> int:
    follower = tuning.TuningFollower(clients, name, say)
    described = poller_for(args, 60.0).until(follower.poll, f"tuning job {name}")
    say(tuning.outcome(described))
    return 0 if described["HyperParameterTuningJobStatus"] == "Completed" else 1


def run_stop(args: argparse.Namespace) -> int:
    """stop-tuning: stop the tuning job and its running trials."""
    tuning.stop_tuning_job(clients_for(args), args.job)
    say(f"asked {args.job} to stop (its finished trials and its best trial stay)")
    return 0


def resolve_tuning_job(args: argparse.Namespace) -> None:
    """deploy --tuning-job: its best trial put in place of the model source the usual deploy reads (refused while
    the tuning job runs or when no trial reported the objective)."""
    if getattr(args, "tuning_job", None) is None:
        return
    require(bool(NAME_PATTERN.fullmatch(args.tuning_job)), "tuning_job", args.tuning_job, "a tuning job name")
    best = tuning.best_training_job(clients_for(args), args.tuning_job)
    say(f"tuning job {args.tuning_job}: best trial {best}")
    args.training_job, args.model_data = best, None


COMMANDS = {
    "tune": Command("start a hyperparameter tuning job over train's job (and follow it)", add_arguments, run_tune),
    "follow-tuning": Command("show a tuning job's trials and the best so far until it ends", job, run_follow),
    "stop-tuning": Command("stop a tuning job and its running trials", job, run_stop),
}
