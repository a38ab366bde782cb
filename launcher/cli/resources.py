"""``delete``, ``list`` and ``cleanup``: what the launcher created in the account, listed and removed (endpoints
with their autoscaling, configs and models; models; the S3 folders it wrote)."""
from __future__ import annotations

import argparse

from launcher.cli import flags, registry
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, need, say
from launcher.endpoints import cleanup
from launcher.errors import SettingError, require
from launcher.inventory import list_rows
from launcher.s3 import S3Uri
from launcher.s3_cleanup import confirm, delete_written, find_written


def delete_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """delete: endpoints and models."""
    p.add_argument("--endpoint", action="append", default=[], help="endpoint (with its config and models)")
    p.add_argument("--model", action="append", default=[], help="model")


def list_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """list: a name filter."""
    p.add_argument("--name-contains", default="smtx")


def cleanup_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """cleanup: the launcher's S3 folders under the prefix."""
    flags.prefix(p, env, "the prefix to clean")
    p.add_argument("--yes", action="store_true", help="delete without asking (needed without a terminal)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")


def run_delete(args: argparse.Namespace) -> int:
    """delete: endpoints (autoscaling first, then endpoint, config and models) and models."""
    if not (args.endpoint or args.model):
        raise SettingError("delete", None, "at least one --endpoint or --model")
    clients = clients_for(args)
    # every name is looked up before anything is deleted; an endpoint whose creation failed still counts while
    # its endpoint config (named like it) is left to delete
    for endpoint in args.endpoint:
        require(cleanup.endpoint_exists(clients, endpoint) or cleanup.endpoint_config_exists(clients, endpoint),
                "endpoint", endpoint, "an existing endpoint (python -m launcher list shows them)")
    for model in args.model:
        require(cleanup.model_exists(clients, model), "model", model,
                "an existing model (python -m launcher list shows them)")
    for endpoint in args.endpoint:
        for line in cleanup.delete_endpoint(clients, endpoint):
            say(line)
    for model in args.model:
        say(cleanup.delete_model(clients, model))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """list: every job, model, config and endpoint whose name contains the filter, newest first."""
    for kind, rows in list_rows(clients_for(args), args.name_contains).items():
        say(f"{kind}: {len(rows)}")
        for row in rows:
            say(row.describe())
    return 0


def run_cleanup(args: argparse.Namespace) -> int:
    """cleanup: list the launcher's S3 folders under the prefix, then delete them once confirmed."""
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


COMMANDS = {
    "delete": Command("delete endpoints (autoscaling, config and models too) or models", delete_flags, run_delete),
    "list": Command("list jobs, models, endpoints and model package versions with creation time, instances and "
                    "status", registry.list_arguments(list_flags), registry.with_packages(run_list)),
    "cleanup": Command("delete the S3 folders the launcher wrote (data, transform files, async inputs)",
                       cleanup_flags, run_cleanup),
}
