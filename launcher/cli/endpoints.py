"""``autoscale``, ``describe`` and ``logs``: an endpoint's scaling, its state, and its (or a transform job's)
CloudWatch lines."""
from __future__ import annotations

import argparse
import sys

from launcher.aws import Clients
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, poller_for, say
from launcher.endpoints import autoscale, cleanup
from launcher.errors import WaitTimeout, require
from launcher.inventory import describe_endpoint
from launcher.logs import LogTail, endpoint_tail, transform_tail


def autoscale_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """autoscale: bounds and target of an endpoint variant, or --off."""
    p.add_argument("endpoint")
    p.add_argument("--variant", default="AllTraffic")
    p.add_argument("--off", action="store_true", help="remove the endpoint's autoscaling")
    p.add_argument("--min", type=int, help="fewest instances (0 only for an asynchronous endpoint)")
    p.add_argument("--max", type=int, help="most instances")
    p.add_argument("--target-invocations", type=float, help="real-time: invocations per instance per minute")
    p.add_argument("--target-backlog", type=float, help="asynchronous: queued requests per instance")
    p.add_argument("--scale-in-cooldown", type=int, default=300, help="seconds (default 300)")
    p.add_argument("--scale-out-cooldown", type=int, default=60, help="seconds (default 60)")


def endpoint_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """describe: an endpoint."""
    p.add_argument("endpoint")


def logs_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """logs: an endpoint's or a transform job's CloudWatch lines."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--endpoint", help="an endpoint")
    which.add_argument("--transform-job", help="a transform job")
    p.add_argument("--follow", action="store_true", help="keep printing new lines (a transform: until it ends)")


def run_autoscale(args: argparse.Namespace) -> int:
    """autoscale: target tracking (and for async, scale from zero), or --off."""
    clients = clients_for(args)
    if args.off:
        given = [f for f in ("min", "max", "target_invocations", "target_backlog") if getattr(args, f) is not None]
        require(not given, given[0] if given else "off", True, "no bounds or target with --off")
        lines = autoscale.remove_scaling(clients, args.endpoint)
        for line in lines or [f"endpoint {args.endpoint} had no autoscaling"]:
            say(line)
        return 0
    require(args.min is not None and args.max is not None, "min", args.min, "--min N and --max N (or --off)")
    require((args.target_invocations is None) != (args.target_backlog is None), "target_invocations",
            args.target_invocations, "one of --target-invocations (real-time) or --target-backlog (asynchronous)")
    kind, target = (("invocations", args.target_invocations) if args.target_invocations is not None
                    else ("backlog", args.target_backlog))
    scaling = autoscale.Scaling(args.min, args.max, target, args.scale_in_cooldown, args.scale_out_cooldown,
                                args.variant)
    for line in autoscale.enable(clients, args.endpoint, scaling, kind):
        say(line)
    return 0


def run_describe(args: argparse.Namespace) -> int:
    """describe: an endpoint's state, variants, async settings, autoscaling and tags."""
    clients = clients_for(args)
    require(bool(cleanup.endpoint_exists(clients, args.endpoint)), "endpoint", args.endpoint, "an existing endpoint")
    for line in describe_endpoint(clients, args.endpoint):
        say(line)
    return 0


def run_logs(args: argparse.Namespace) -> int:
    """logs: an endpoint's or a transform job's CloudWatch lines, once or --follow."""
    clients = clients_for(args)
    if args.endpoint:
        tail = endpoint_tail(clients.logs, args.endpoint)
    else:
        tail = transform_tail(clients.logs, args.transform_job)
    lines = tail.poll()
    for line in lines:
        say(line)
    if not lines:
        say("no log lines yet" + ("; following (Ctrl-C or --timeout-s ends it)" if args.follow else ""))
    if not args.follow:
        return 0
    poller = poller_for(args, 5.0)
    try:
        poller.until(lambda: _more(tail, args, clients), "logs")
    except WaitTimeout:  # --timeout-s bounds a follow: reaching it is the normal end
        print(f"stopped following after {poller.timeout_s:g} s (--timeout-s)", file=sys.stderr)
    return 0


def _more(tail: LogTail, args: argparse.Namespace, clients: Clients) -> bool | None:
    """Print new lines; True once a followed transform job has ended (an endpoint is followed until stopped)."""
    for line in tail.poll():
        say(line)
    if args.transform_job:
        status = clients.sagemaker.describe_transform_job(TransformJobName=args.transform_job)["TransformJobStatus"]
        return True if status in ("Completed", "Failed", "Stopped") else None
    return None


COMMANDS = {
    "autoscale": Command("scale an endpoint's instances with its traffic (or --off)", autoscale_flags, run_autoscale),
    "describe": Command("show an endpoint: status, variants, async settings, autoscaling, tags", endpoint_flags,
                        run_describe),
    "logs": Command("print an endpoint's or a transform job's CloudWatch log lines", logs_flags, run_logs),
}
