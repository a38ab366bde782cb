"""``invoke`` and ``invoke-async``: records to a real-time endpoint, or one request queued on an asynchronous one."""
from __future__ import annotations

import argparse
import json
import sys

from launcher.cli import flags
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, object_tagging_for, poller_for, say
from launcher.endpoints import invoke
from launcher.endpoints.async_invoke import content_type_for, invoke_async, stage_input, wait_for_answer


def invoke_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """invoke: an endpoint and the records to send."""
    p.add_argument("endpoint")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", action="append", help="a text to predict on (repeatable)")
    given.add_argument("--file", help=".jsonl, .json or .txt file of records")
    p.add_argument("--content-type", default="json", choices=["json", "jsonlines"])
    p.add_argument("--target-model", help="multi-model endpoints: which .tar.gz to use")
    p.add_argument("--allow-errors", action="store_true",
                   help="exit 0 even when some records are answered with an error object")


def invoke_async_flags(p: argparse.ArgumentParser, env: Env) -> None:
    """invoke-async: an endpoint, an input file or S3 object, and whether to wait for the answer."""
    p.add_argument("endpoint")
    p.add_argument("--input", required=True, help="a local .jsonl/.json file (uploaded) or an s3:// URI")
    p.add_argument("--content-type", choices=["json", "jsonlines"], help="default: from the input's suffix")
    flags.prefix(p, env, "where a local input is uploaded")
    p.add_argument("--wait", action="store_true", help="poll S3 until the answer or the error appears, print it")
    flags.tags(p)


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


COMMANDS = {
    "invoke": Command("send records to an endpoint and print the predictions", invoke_flags, run_invoke),
    "invoke-async": Command("queue a request on an asynchronous endpoint (--wait: print its answer)",
                            invoke_async_flags, run_invoke_async),
}
