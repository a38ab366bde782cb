"""The handlers of the endpoint commands: deploy (new or in place), deploy-multi, add-model, invoke,
invoke-async, autoscale, describe, logs and delete. Each checks every flag before it creates anything."""
from __future__ import annotations

import argparse
import json
import sys

from launcher.aws import Clients
from launcher.cli.support import clients_for, object_tagging_for, poller_for, say, serving_for
from launcher.endpoints import autoscale, cleanup, deploy, invoke, multimodel
from launcher.endpoints.async_invoke import content_type_for, invoke_async, stage_input, wait_for_answer
from launcher.endpoints.update import update_endpoint
from launcher.errors import SettingError, WaitTimeout, require
from launcher.inventory import describe_endpoint
from launcher.logs import LogTail, endpoint_tail, transform_tail
from launcher.s3 import S3Uri, ensure_bucket


def source_of(args: argparse.Namespace) -> str:
    """The one model source given (--training-job or --model-data), checked for its form."""
    return deploy.model_source(args.training_job, args.model_data)


def _report_deployment(made: deploy.Deployment, updated: bool = False) -> int:
    verb = "updated" if updated else "endpoint"
    say(f"{verb} {made.endpoint} (config {made.endpoint_config}, model {made.model}) serving {made.model_data}")
    say(f"delete with: python -m launcher delete --endpoint {made.endpoint}")
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    """deploy: a new endpoint, or with --endpoint the existing one updated in place."""
    source, serving = source_of(args), serving_for(args)
    clients, poller = clients_for(args), poller_for(args, 15.0)
    if serving.asynchronous is not None:  # SageMaker would only find out at the first answer
        ensure_bucket(clients.s3, S3Uri.parse(serving.asynchronous.output_uri), clients.region)
    if args.endpoint:
        require(args.wait, "no_wait", True, "waiting for an update (the old config is deleted once it serves)")
        return _report_deployment(update_endpoint(clients, args.endpoint, source, serving, poller, emit=say), True)
    return _report_deployment(deploy.deploy(clients, source, serving, poller, emit=say, wait=args.wait))


def run_deploy_multi(args: argparse.Namespace) -> int:
    """deploy-multi: a multi-model endpoint over a prefix."""
    prefix, serving, clients = S3Uri.parse(args.model_prefix, "model_prefix"), serving_for(args), clients_for(args)
    ensure_bucket(clients.s3, prefix, clients.region)
    return _report_deployment(multimodel.deploy_multi_model(clients, str(prefix), serving, poller_for(args, 15.0),
                                                            emit=say, wait=args.wait))


def run_add_model(args: argparse.Namespace) -> int:
    """add-model: copy an archive under a multi-model prefix."""
    source, prefix, clients = source_of(args), S3Uri.parse(args.model_prefix, "model_prefix"), clients_for(args)
    tagging = object_tagging_for(args, "add-model")
    ensure_bucket(clients.s3, prefix, clients.region)
    target = multimodel.add_model(clients, source, str(prefix), args.name, tagging)
    say(f"added {target}; invoke with --target-model {target}")
    return 0


def run_invoke(args: argparse.Namespace) -> int:
    """invoke: records to a real-time endpoint; exit 1 when some are answered with an error."""
    records = [{"text": t} for t in args.text] if args.text else invoke.read_records(args.file)
    predictions = invoke.invoke(clients_for(args), args.endpoint, records, args.content_type, args.target_model)
    for prediction in predictions:
        say(json.dumps(prediction, ensure_ascii=False))
    refused = invoke.error_records(predictions)
    if refused and not args.allow_errors:
        shown = ", ".join(map(str, refused[:20])) + (", ..." if len(refused) > 20 else "")
        print(f"{len(refused)} of {len(records)} records were answered with an error (records {shown}); "
              "pass --allow-errors to exit 0 anyway", file=sys.stderr)
        return 1
    return 0


def run_invoke_async(args: argparse.Namespace) -> int:
    """invoke-async: queue one request; with --wait print its answer (exit 0) or its error (exit 1)."""
    content_type = content_type_for(args.input, args.content_type)
    poller, tagging = poller_for(args, 10.0), object_tagging_for(args, "invoke-async")
    clients = clients_for(args)
    request = invoke_async(clients, args.endpoint,
                           stage_input(clients, args.input, args.s3_prefix, content_type, tagging), content_type)
    say(f"queued {request.input_uri}: answer at {request.output_uri}"
        + (f", error at {request.failure_uri}" if request.failure_uri else ""))
    if not args.wait:
        return 0
    answer = wait_for_answer(clients, request, poller)
    if answer.ok:
        say(answer.body.rstrip("\n"))
        return 0
    print(f"the request failed ({answer.location}): {answer.body.strip()}", file=sys.stderr)
    return 1


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
