"""Command line over the launcher's Python API: ``python -m launcher COMMAND ...``.

Flags fall back to the environment where a laptop usually keeps them: the AWS variables boto3 reads, plus
SMTX_SAGEMAKER_ROLE, SMTX_TRAINING_IMAGE, SMTX_SERVING_IMAGE and SMTX_S3_PREFIX. Nothing else reads them.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from launcher import commands
from launcher.errors import LauncherError
from launcher.hyperparameters import REQUIRED_HYPERPARAMETERS, SPECS
from tasks.kinds import TASKS
from training.data import DataError

Env = Mapping[str, str]
_SERVING_KNOBS = (("--workers", "TorchServe workers per model"), ("--batch-size", "TorchServe batch size"),
                  ("--max-batch-delay-ms", "TorchServe max batch delay"),
                  ("--response-timeout-s", "TorchServe response timeout"),
                  ("--model-server-timeout-s", "model server timeout"))


def _model_source(p: argparse.ArgumentParser, required: bool = True) -> None:
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--training-job", help="a Completed training job whose model to use")
    source.add_argument("--model-data", help="s3:// URI of a model.tar.gz")


def _serving(p: argparse.ArgumentParser, env: Env, waits: bool = True) -> None:
    p.add_argument("--image", default=env.get("SMTX_SERVING_IMAGE"), help="serving image (SMTX_SERVING_IMAGE)")
    p.add_argument("--role", default=env.get("SMTX_SAGEMAKER_ROLE"), help="execution role (SMTX_SAGEMAKER_ROLE)")
    p.add_argument("--instance-type", default="ml.g4dn.xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    for flag, help_text in _SERVING_KNOBS:
        p.add_argument(flag, type=int, help=f"{help_text} (container default when unset)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra container environment")
    if waits:
        p.add_argument("--no-wait", dest="wait", action="store_false", help="return once creation has started")


def _prefix(p: argparse.ArgumentParser, env: Env, help_text: str) -> None:
    p.add_argument("--s3-prefix", default=env.get("SMTX_S3_PREFIX"), help=f"{help_text} (SMTX_S3_PREFIX)")


def _data(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("folder", help="folder with train.csv, dev.csv and test.csv")
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--use-bbox", action="store_true", help="the files carry a bbox column (LayoutLM)")


def _upload(p: argparse.ArgumentParser, env: Env) -> None:
    _data(p, env)
    _prefix(p, env, "where to upload")


def _train(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("--data", required=True, help="s3:// prefix with the three files, or a local folder to upload")
    _prefix(p, env, "prefix for uploaded data, model output and checkpoints")
    p.add_argument("--image", default=env.get("SMTX_TRAINING_IMAGE"), help="training image (SMTX_TRAINING_IMAGE)")
    p.add_argument("--role", default=env.get("SMTX_SAGEMAKER_ROLE"), help="execution role (SMTX_SAGEMAKER_ROLE)")
    p.add_argument("--instance-type", default="ml.g4dn.xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--volume-gb", type=int, default=30)
    p.add_argument("--max-runtime-s", type=int, default=24 * 3600)
    p.add_argument("--spot", action="store_true", help="managed spot training (checkpoints under the prefix)")
    p.add_argument("--max-wait-s", type=int, help="spot: capacity wait plus runtime")
    p.add_argument("--checkpoint-uri", help="spot: checkpoint prefix (default {s3-prefix}/checkpoints)")
    for name, spec in SPECS.items():  # one flag per hyperparameter, named after it
        flags = ["--" + name.replace("_", "-")] + (["--task"] if name == "task_name" else [])
        if spec.kind is bool:
            p.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=spec.help)
        else:
            p.add_argument(*flags, type=spec.kind, required=name in REQUIRED_HYPERPARAMETERS, help=spec.help)
    p.add_argument("--no-wait", dest="wait", action="store_false", help="return once the job has started")


def _job(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("job", help="training job name")


def _deploy(p: argparse.ArgumentParser, env: Env) -> None:
    _model_source(p)
    _serving(p, env)


def _deploy_multi(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("--model-prefix", required=True, help="s3:// prefix the endpoint serves model.tar.gz files from")
    _serving(p, env)


def _add_model(p: argparse.ArgumentParser, env: Env) -> None:
    _model_source(p)
    p.add_argument("--model-prefix", required=True, help="the multi-model endpoint's s3:// prefix")
    p.add_argument("--name", help="TargetModel name ending with .tar.gz (default: from the source)")


def _invoke(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("endpoint")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", action="append", help="a text to predict on (repeatable)")
    given.add_argument("--file", help=".jsonl, .json or .txt file of records")
    p.add_argument("--content-type", default="json", choices=["json", "jsonlines"])
    p.add_argument("--target-model", help="multi-model endpoints: which .tar.gz to use")


def _transform(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("--input", required=True, help="jsonlines file, one record per line")
    p.add_argument("--output", required=True, help="where to write the answers, one line per input line")
    p.add_argument("--local", action="store_true", help="send to a running server instead of SageMaker")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="--local: the server (POST {url}/invocations)")
    p.add_argument("--concurrency", type=int, default=4, help="--local: requests in flight")
    p.add_argument("--max-payload-mb", type=int, default=6)
    p.add_argument("--model", help="an existing SageMaker model (or give --training-job / --model-data)")
    _model_source(p, required=False)
    _serving(p, env, waits=False)  # image and role: only to create a model from --training-job / --model-data
    _prefix(p, env, "where the job's input and output go")
    p.add_argument("--max-concurrent", type=int, default=2, help="SageMaker: requests in flight per instance")


def _delete(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("--endpoint", action="append", default=[], help="endpoint (with its config and models)")
    p.add_argument("--model", action="append", default=[], help="model")


def _list(p: argparse.ArgumentParser, env: Env) -> None:
    p.add_argument("--name-contains", default="smtx")


#: command -> (help, arguments)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser, Env], None]]] = {
    "validate": ("check a data folder with the training validator", _data),
    "upload": ("validate a data folder and upload it to S3", _upload),
    "train": ("start a training job and follow it", _train),
    "follow": ("follow a training job until it ends", _job),
    "stop": ("stop a training job", _job),
    "deploy": ("deploy a model on a real-time endpoint", _deploy),
    "deploy-multi": ("create a multi-model endpoint", _deploy_multi),
    "add-model": ("add a model to a multi-model endpoint's prefix", _add_model),
    "invoke": ("send records to an endpoint and print the predictions", _invoke),
    "transform": ("batch transform a jsonlines file, on SageMaker or --local", _transform),
    "delete": ("delete endpoints (with config and models) or models", _delete),
    "list": ("list jobs, models and endpoints", _list),
}


def build_parser(env: Env) -> argparse.ArgumentParser:
    """The argument parser; ``env`` supplies the defaults that fall back to environment variables."""
    parser = argparse.ArgumentParser(prog="python -m launcher",
                                     description="From a laptop to SageMaker: train, deploy, invoke, transform.")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)")
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. a moto server (default: AWS_ENDPOINT_URL)")
    parser.add_argument("--poll-s", type=float, help="seconds between status checks")
    parser.add_argument("--timeout-s", type=float, help="give up waiting after this many seconds")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text), env)
    return parser


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    """Run one command; return its exit status (0 ok, 1 failed job/request, 2 bad input)."""
    args = build_parser(os.environ if env is None else env).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return commands.HANDLERS[args.command](args)
    except DataError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except (ClientError, BotoCoreError) as exc:
        print(f"AWS error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: jobs and endpoints already started keep running (python -m launcher list)",
              file=sys.stderr)
        return 130
