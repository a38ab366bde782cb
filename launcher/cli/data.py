"""``validate`` and ``upload``: a data folder checked with the training validator on the laptop, then sent to S3."""
from __future__ import annotations

import argparse

from launcher.cli import flags
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, need, object_tagging_for, say
from launcher.jobs import data
from launcher.jobs.hyperparameters import FIELDS
from launcher.s3 import S3Uri, ensure_bucket


def data_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """validate: a data folder and its task."""
    p.add_argument("folder", help="folder with train.csv, dev.csv and test.csv")
    p.add_argument("--task", required=True, choices=FIELDS["task_name"].choices)
    p.add_argument("--use-bbox", action="store_true", help="the files carry a bbox column (LayoutLM)")


def upload_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """upload: a data folder and where it goes."""
    data_flags(p, env)
    flags.prefix(p, env, "where to upload", creates=True)
    flags.tags(p)


def run_validate(args: argparse.Namespace) -> int:
    """validate: the folder's rows per split, or every problem (file, line, column) with exit status 2."""
    rows = data.validate_folder(args.folder, args.task, args.use_bbox)
    say(f"{args.folder}: valid for {args.task} ({', '.join(f'{k} {v} rows' for k, v in rows.items())})")
    return 0


def run_upload(args: argparse.Namespace) -> int:
    """upload: validate, check the bucket (or create it), upload to a new folder and print its URI."""
    plan = data.plan_upload(args.folder, args.task, need(args, "s3_prefix"), args.use_bbox)
    tagging = object_tagging_for(args, "upload")
    clients = clients_for(args)
    if ensure_bucket(clients.s3, S3Uri.parse(plan.uri), clients.region, args.create_bucket):
        say(f"created bucket {S3Uri.parse(plan.uri).bucket}")
    say(data.upload_planned(clients, plan, tagging).uri)
    return 0


COMMANDS = {
    "validate": Command("check a data folder with the training validator", data_flags, run_validate),
    "upload": Command("validate a data folder and upload it to S3", upload_flags, run_upload),
}
