"""``deploy-multi`` and ``add-model``: one endpoint serving every model.tar.gz under an S3 prefix, and a model
copied there."""
from __future__ import annotations

import argparse

from launcher.cli import flags
from launcher.cli.flags import Env
from launcher.cli.support import (
    Command,
    clients_for,
    object_tagging_for,
    poller_for,
    report_deployment,
    say,
    serving_for,
    source_of,
)
from launcher.endpoints import multimodel
from launcher.s3 import S3Uri, ensure_bucket


def deploy_multi_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """deploy-multi: the prefix the endpoint serves from, and how to serve."""
    p.add_argument("--model-prefix", required=True, help="s3:// prefix the endpoint serves model.tar.gz files from")
    flags.serving(p, env)


def add_model_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """add-model: a model source, the endpoint's prefix and the archive's name there."""
    flags.model_source(p)
    p.add_argument("--model-prefix", required=True, help="the multi-model endpoint's s3:// prefix")
    p.add_argument("--name", help="TargetModel name ending with .tar.gz (default: from the source)")
    flags.tags(p)


def run_deploy_multi(args: argparse.Namespace) -> int:
    """deploy-multi: a multi-model endpoint over a prefix."""
    prefix, serving, clients = S3Uri.parse(args.model_prefix, "model_prefix"), serving_for(args), clients_for(args)
    ensure_bucket(clients.s3, prefix, clients.region)
    return report_deployment(multimodel.deploy_multi_model(clients, str(prefix), serving, poller_for(args, 15.0),
                                                           emit=say, wait=args.wait))


def run_add_model(args: argparse.Namespace) -> int:
    """add-model: copy an archive under a multi-model prefix."""
    source, prefix, clients = source_of(args), S3Uri.parse(args.model_prefix, "model_prefix"), clients_for(args)
    tagging = object_tagging_for(args, "add-model")
    ensure_bucket(clients.s3, prefix, clients.region)
    target = multimodel.add_model(clients, source, str(prefix), args.name, tagging)
    say(f"added {target}; invoke with --target-model {target}")
    return 0


COMMANDS = {
    "deploy-multi": Command("create a multi-model endpoint", deploy_multi_flags, run_deploy_multi),
    "add-model": Command("add a model to a multi-model endpoint's prefix", add_model_flags, run_add_model),
}
