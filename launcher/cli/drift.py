"""``drift``: the flags and the handler, and where the two samples are read from (a checkpoint or a training
output archive; an endpoint's capture prefix on S3, a local folder of capture files, or a ``transform --local``
pair). The comparison itself is ``launcher.drift``.

Exit status: 0 with the report printed, 2 for bad input; with ``--fail-on-drift`` 1 when a feature passes the
threshold, so a CI step can stop on drift while an interactive user still just reads the table.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from botocore.exceptions import ClientError

from launcher import drift
from launcher.checks import existing_file, writable_path
from launcher.cli.flags import Env
from launcher.cli.support import Command, clients_for, say
from launcher.endpoints.deploy import VARIANT, check_model_data
from launcher.errors import SettingError, require
from launcher.s3 import ARCHIVE_READ_ERRORS, S3Uri, archive_members

REFERENCE_FILE = "test_predictions.jsonl"


def add_arguments(p: argparse.ArgumentParser, env: Env) -> None:
    """drift: where the answers are, where the test split is, the threshold and the outputs."""
    p.add_argument("source", help="an endpoint name (its data capture on S3), a folder of capture .jsonl files, "
                                  "or the output file of transform --local (with --input)")
    reference = p.add_mutually_exclusive_group(required=True)
    reference.add_argument("--checkpoint", help="the trained model's folder (holds test_predictions.jsonl)")
    reference.add_argument("--model-data", help="s3:// model.tar.gz of a training job (holds test_predictions.jsonl)")
    p.add_argument("--input", help="with a transform --local output: the input file it was made from")
    p.add_argument("--variant", default=VARIANT, help=f"the endpoint's production variant (default {VARIANT})")
    p.add_argument("--threshold", type=float, default=drift.DEFAULT_THRESHOLD,
                   help=f"flag a feature whose PSI is above this (default {drift.DEFAULT_THRESHOLD})")
    p.add_argument("--plot", help="write a PNG of the three distributions here")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 1 when a feature is flagged (for CI)")


def run(args: argparse.Namespace) -> int:
    """drift: read both samples, print the table, draw the plot."""
    plot = writable_path(args.plot, "plot") if args.plot else None
    require(args.threshold > 0, "threshold", args.threshold, "a PSI above 0, such as 0.2")
    local = Path(args.source)
    require(args.input is None or local.is_file(), "input", args.input,
            "--input only with a transform --local output file as the source")
    clients = None if local.exists() and args.checkpoint else clients_for(args)
    reference = drift.reference_sample(_reference_lines(args, clients), REFERENCE_FILE)
    require(reference.records > 0, "checkpoint", args.checkpoint or args.model_data, f"a non-empty {REFERENCE_FILE}")
    current = _current_sample(args, local, clients)
    require(current.records > 0, "source", args.source, "captured records (none were found)")
    made = drift.report(reference, current, args.threshold)
    say(made.table())
    if plot is not None:
        from launcher.drift_plot import draw  # matplotlib only when a plot is asked for

        draw(made, plot)
        say(f"plot: {plot}")
    return 1 if args.fail_on_drift and made.drifted else 0


def _reference_lines(args: argparse.Namespace, clients: Any) -> list[str]:
    if args.checkpoint:
        return existing_file(Path(args.checkpoint) / REFERENCE_FILE, "checkpoint").read_text("utf-8").splitlines()
    location = check_model_data(args.model_data)
    try:
        found = archive_members(clients.s3, location, [REFERENCE_FILE])  # a stream: only the one file is read
    except ARCHIVE_READ_ERRORS as exc:
        raise SettingError("model_data", args.model_data, f"a readable model.tar.gz ({exc})") from None
    if REFERENCE_FILE in found:
        return found[REFERENCE_FILE].decode("utf-8").splitlines()
    raise SettingError("model_data", args.model_data, f"an archive with {REFERENCE_FILE} (a training job's "
                       "output has it; a `make archive` model.tar.gz does not: use --checkpoint)")


def _current_sample(args: argparse.Namespace, local: Path, clients: Any) -> drift.Sample:
    sample = drift.Sample()
    if local.is_file() and args.input:
        records = [drift.parse_json(line, f"{args.input} line {n}") for n, line in
                   enumerate(existing_file(args.input, "input").read_text("utf-8").splitlines(), 1) if line.strip()]
        answers = [drift.parse_json(line, f"{local} line {n}") for n, line in
                   enumerate(local.read_text("utf-8").splitlines(), 1) if line.strip()]
        require(len(records) == len(answers), "input", args.input,
                f"the input of {local} ({len(records)} records for {len(answers)} answers)")
        drift.add_pairs(sample, records, answers)
    elif local.is_file():
        drift.add_capture_lines(sample, local.read_text("utf-8").splitlines(), str(local))
    elif local.is_dir():
        for path in sorted(local.rglob("*.jsonl")):
            drift.add_capture_lines(sample, path.read_text("utf-8").splitlines(), str(path))
    else:
        for key, text in _captured_objects(clients, args.source, args.variant):
            drift.add_capture_lines(sample, text.splitlines(), key)
    return sample


def capture_prefix(clients: Any, endpoint: str, variant: str) -> S3Uri:
    """Where SageMaker writes ``endpoint``'s captures: ``{destination}/{endpoint}/{variant}/``."""
    try:
        described = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError:
        raise SettingError("source", endpoint, "an existing endpoint name or a local folder or file") from None
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    capture = config.get("DataCaptureConfig") or {}
    require(bool(capture.get("EnableCapture", bool(capture))), "source", endpoint,
            "an endpoint with data capture (deploy --capture s3://...)")
    return S3Uri.parse(capture["DestinationS3Uri"].rstrip("/"), "capture").join(endpoint, variant).as_prefix()


def _captured_objects(clients: Any, endpoint: str, variant: str) -> Iterator[tuple[str, str]]:
    prefix = capture_prefix(clients, endpoint, variant)
    pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key)
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):
                body = clients.s3.get_object(Bucket=prefix.bucket, Key=item["Key"])["Body"].read()
                yield f"s3://{prefix.bucket}/{item['Key']}", body.decode("utf-8")


COMMANDS = {
    "drift": Command("compare an endpoint's captured answers (or a transform --local output) with the test split",
                     add_arguments, run),
}
