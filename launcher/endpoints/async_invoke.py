"""Asynchronous inference from the client's side: put the input in S3, InvokeEndpointAsync, wait for the answer.

SageMaker queues the request, runs it (up to 1 GB and 1 hour) and writes the answer to the endpoint's output
prefix, or the error to its failure prefix; the call returns both locations at once. Waiting means polling S3
for whichever of the two appears first.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.aws import Clients
from launcher.checks import existing_file
from launcher.errors import require
from launcher.names import unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri, ensure_bucket, exists, upload_file
from launcher.waiting import Poller
from tasks.serving_contract import JSON, JSONLINES

log = logging.getLogger(__name__)

#: file suffix -> the content type the input is sent as
CONTENT_TYPES = {".jsonl": JSONLINES, ".jsonlines": JSONLINES, ".json": JSON}
#: folder under the S3 prefix where local inputs are uploaded (``cleanup`` finds them there)
INPUT_FOLDER = "async-input"


@dataclass(frozen=True)
class AsyncRequest:
    """A queued request: where its input is, and where its answer or its error will appear."""

    endpoint: str
    input_uri: str
    output_uri: str
    failure_uri: str | None
    inference_id: str | None


@dataclass(frozen=True)
class AsyncAnswer:
    """What appeared first: the answer (``ok``) or the error, and its text."""

    ok: bool
    location: str
    body: str


def content_type_for(source: str, given: str | None) -> str:
    """The content type: the one given, else from the file suffix; SettingError naming --content-type."""
    if given:
        return {"json": JSON, "jsonlines": JSONLINES}.get(given, given)
    suffix = Path(source.split("?", 1)[0]).suffix.lower()
    require(suffix in CONTENT_TYPES, "content_type", None,
            f"--content-type json|jsonlines, or an input ending with one of {sorted(CONTENT_TYPES)}")
    return CONTENT_TYPES[suffix]


def stage_input(clients: Clients, source: str, s3_prefix: str | None, content_type: str,
                tagging: str | None = None) -> str:
    """The input's S3 URI: an s3:// URI as it is (it must exist), a local file uploaded under the prefix with
    ``tagging`` (default: ``invoke-async``'s tags without user tags)."""
    if source.startswith("s3://"):
        location = S3Uri.parse(source, "input")
        require(exists(clients.s3, location), "input", source, f"an existing object (bucket {location.bucket!r} "
                                                                  f"has no key {location.key!r})")
        return source
    path = existing_file(source, "input")
    require(bool(s3_prefix), "s3_prefix", s3_prefix, "--s3-prefix or SMTX_S3_PREFIX, where a local input is "
                                                      "uploaded")
    target = S3Uri.parse(str(s3_prefix), "s3_prefix").join(INPUT_FOLDER, unique_name("smtx-async"), path.name)
    ensure_bucket(clients.s3, target, clients.region)
    tagging = Placement().object_tagging("invoke-async") if tagging is None else tagging
    return str(upload_file(clients.s3, path, target, content_type, tagging))


def invoke_async(clients: Clients, endpoint: str, input_uri: str, content_type: str) -> AsyncRequest:
    """Queue one request; returns at once with the output and failure locations."""
    answer: dict[str, Any] = clients.runtime.invoke_endpoint_async(
        EndpointName=endpoint, InputLocation=input_uri, ContentType=content_type, Accept=content_type)
    log.info("queued %s on %s -> %s", input_uri, endpoint, answer["OutputLocation"])
    return AsyncRequest(endpoint, input_uri, answer["OutputLocation"], answer.get("FailureLocation"),
                        answer.get("InferenceId"))


def wait_for_answer(clients: Clients, request: AsyncRequest, poller: Poller) -> AsyncAnswer:
    """Poll S3 until the answer or the error object exists; return it (WaitTimeout when neither comes)."""
    candidates = [(True, request.output_uri)] + ([(False, request.failure_uri)] if request.failure_uri else [])

    def probe() -> AsyncAnswer | None:
        for ok, uri in candidates:
            location = S3Uri.parse(str(uri))
            if exists(clients.s3, location):
                body = clients.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
                return AsyncAnswer(ok, str(uri), body.decode("utf-8", errors="replace"))
        return None

    return poller.until(probe, f"the answer of {request.input_uri} on {request.endpoint}")
