"""Command line over the launcher's Python API: ``python -m launcher COMMAND ...``.

Each command group is one module of this package holding its commands' flags and handlers side by side, and its
rows of the command table (``COMMANDS``: help, flags, handler). This module joins the rows in help order, builds the
parser from them and maps errors to exit statuses. Flags fall back to the environment where a laptop usually
keeps them: the AWS variables boto3 reads, plus SMTX_SAGEMAKER_ROLE, SMTX_TRAINING_IMAGE, SMTX_SERVING_IMAGE
and SMTX_S3_PREFIX. Nothing else reads them.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from launcher.cli import (
    data,
    deploy,
    drift,
    endpoints,
    invoke,
    multimodel,
    pipeline,
    registry,
    resources,
    train,
    transform,
    tune,
)
from launcher.cli.flags import Env
from launcher.cli.support import Command
from launcher.errors import LauncherError
from training.data import DataError

#: the command groups, in the order ``--help`` lists their commands
_GROUPS: tuple[dict[str, Command], ...] = (data.COMMANDS, train.COMMANDS, tune.COMMANDS, deploy.COMMANDS,
                                           multimodel.COMMANDS, invoke.COMMANDS, endpoints.COMMANDS, transform.COMMANDS,
                                           resources.COMMANDS, drift.COMMANDS, registry.COMMANDS,
                                           pipeline.COMMANDS)


def _table(groups: tuple[dict[str, Command], ...]) -> dict[str, Command]:
    table: dict[str, Command] = {}
    for group in groups:
        for name, command in group.items():
            if name in table:  # two groups declaring one name: the later would silently win
                raise ValueError(f"command {name!r} is declared twice")
            table[name] = command
    return table


#: the one command table: the parser and the dispatch both read it
COMMANDS = _table(_GROUPS)
#: the flags every command takes, before or after its name: (flags, add_argument keywords)
GLOBAL_FLAGS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--region",), {"help": "AWS region (default: AWS_REGION / AWS_DEFAULT_REGION)"}),
    (("--profile",), {"help": "AWS profile (default: AWS_PROFILE)"}),
    (("--endpoint-url",), {"help": "AWS endpoint, e.g. a moto server (default: AWS_ENDPOINT_URL)"}),
    (("--poll-s",), {"type": float, "help": "seconds between status checks"}),
    (("--timeout-s",), {"type": float, "help": "give up waiting after this many seconds"}),
    (("-v", "--verbose"), {"action": "store_true", "default": False}),
)


def build_parser(env: Env) -> argparse.ArgumentParser:
    """The argument parser; ``env`` supplies the defaults that fall back to environment variables."""
    parser = argparse.ArgumentParser(prog="python -m launcher",
                                     description="From a laptop to SageMaker: train, deploy, invoke, transform.")
    for flags, options in GLOBAL_FLAGS:
        parser.add_argument(*flags, **options)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        # no abbreviations: `describe --endpoint X` must not be read as --endpoint-url X
        command_parser = sub.add_parser(name, help=command.help, description=command.help, allow_abbrev=False)
        group = command_parser.add_argument_group("global options (also accepted before the command)")
        for flags, options in GLOBAL_FLAGS:
            # SUPPRESS: given only before the command, the value parsed there stays
            group.add_argument(*flags, **{**options, "default": argparse.SUPPRESS})
        command.add_arguments(command_parser, env)
    return parser


def main(argv: Sequence[str] | None = None, env: Env | None = None) -> int:
    """Run one command; return its exit status (0 ok, 1 failed job/request, 2 bad input, 130 interrupted)."""
    args = build_parser(os.environ if env is None else env).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command].run(args)
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
