"""``deploy``: a model on a new endpoint (real-time, ``--serverless`` or ``--async``, with data capture), or an
existing endpoint updated in place (``--endpoint``)."""
from __future__ import annotations

import argparse

from launcher.cli import flags, registry, tune
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, poller_for, report_deployment, say, serving_for, source_of
from launcher.endpoints import deploy
from launcher.endpoints.update import update_endpoint
from launcher.errors import require
from launcher.s3 import S3Uri, ensure_bucket


def deploy_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """deploy: a model source, how to serve it, and where (a new endpoint, or --endpoint to update)."""
    flags.model_source(p, package=True, tuning=True)
    flags.serving(p, env)
    p.add_argument("--endpoint", help="update this existing endpoint in place instead of creating one")
    serverless = p.add_argument_group("serverless inference")
    serverless.add_argument("--serverless", action="store_true", help="serverless endpoint (no instances, no GPU)")
    serverless.add_argument("--memory-mb", type=int, help="1024-6144 in steps of 1024")
    serverless.add_argument("--max-concurrency", type=int, help="concurrent invocations, 1-200")
    later = p.add_argument_group("asynchronous inference")
    later.add_argument("--async", dest="asynchronous", action="store_true", help="asynchronous endpoint")
    later.add_argument("--output", help="s3:// prefix for the answers (errors go to {output}/failures/)")
    later.add_argument("--success-topic", help="SNS topic ARN told of each answer")
    later.add_argument("--error-topic", help="SNS topic ARN told of each error")
    later.add_argument("--max-concurrent-invocations", type=int, help="requests per instance at once (1-1000)")
    capture = p.add_argument_group("data capture (real-time and asynchronous endpoints; read by `drift`)")
    capture.add_argument("--capture", metavar="S3_URI", help="capture requests and answers under this s3:// prefix")
    capture.add_argument("--capture-percent", type=int, help="share of requests captured, 1-100 (default 100)")


def run_deploy(args: argparse.Namespace) -> int:
    """deploy: a new endpoint, or with --endpoint the existing one updated in place; --model-package: an Approved
    registry version's image and archive; --tuning-job: its best trial."""
    registry.resolve_package(args)
    tune.resolve_tuning_job(args)
    source, serving = source_of(args), serving_for(args)
    clients, poller = clients_for(args), poller_for(args, 15.0)
    if serving.asynchronous is not None:  # SageMaker would only find out at the first answer
        ensure_bucket(clients.s3, S3Uri.parse(serving.asynchronous.output_uri), clients.region)
    if args.endpoint:
        require(args.wait, "no_wait", True, "waiting for an update (the old config is deleted once it serves)")
        return report_deployment(update_endpoint(clients, args.endpoint, source, serving, poller, emit=say), True)
    return report_deployment(deploy.deploy(clients, source, serving, poller, emit=say, wait=args.wait))


COMMANDS = {
    "deploy": Command("deploy a model on a new endpoint (real-time, --serverless or --async), or update one in "
                      "place (--endpoint); --model-package: an Approved registry version; --tuning-job: its best "
                      "trial", deploy_flags, run_deploy),
}
