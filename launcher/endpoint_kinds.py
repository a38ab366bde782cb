"""The ways an endpoint serves besides instances: serverless and asynchronous inference; and data capture.

Each kind is a small config, checked when made, that gives the endpoint config its part (``ServerlessConfig`` in
the variant, or ``AsyncInferenceConfig``) and the container the environment that kind needs. Variable names and
bounds come from ``tasks.serving_contract.VARIABLES``, the container's own contract, never from here.
"""
from __future__ import annotations

import json
import logging
import tarfile
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from launcher.errors import require
from launcher.s3 import S3Uri
from tasks.serving_contract import VARIABLES
from tasks.serving_manifest import DEFAULT_RUNTIME, SERVING_FILE, ServingManifest

log = logging.getLogger(__name__)

SERVERLESS_MEMORY_MB = tuple(range(1024, 6145, 1024))
SERVERLESS_MAX_CONCURRENCY = 200
#: serverless limits: a 4 MB request and response, 60 s per invocation
SERVERLESS_PAYLOAD_MB = 4
SERVERLESS_TIMEOUT_S = 60
#: the smallest serverless memory each runtime (serving.json's ``runtime``) starts and answers in, in MB. Measured
#: (bench/cold_start.py, the MiniLM-L6 classifier): all of serve -- entrypoint, frontend, worker -- peaks at
#: 450 MB with an ONNX archive and 735 MB with a torch one; a 4 MB request adds up to ~250 MB (one 2M-character
#: slice through the tokenizer, its records and answer). Rounded up to SageMaker's 1 GB steps with that room.
SERVERLESS_MIN_MEMORY_MB: dict[str, int] = {"onnx": 1024, "torch": 2048}
#: archives larger than this are not scanned for serving.json (the torch minimum, the larger, applies)
MAX_SCAN_BYTES = 2 * 1024**3
#: asynchronous inference: SageMaker's limits are a 1 GB payload and 1 hour of processing per request
ASYNC_TIMEOUT_S = 3600
ASYNC_MAX_CONCURRENT = 1000
#: content types SageMaker writes into capture files as text; any other (CSV aside) is stored as BASE64
CAPTURE_JSON_TYPES = ("application/json", "application/jsonlines")


@dataclass(frozen=True)
class Serverless:
    """A serverless endpoint: memory (1024-6144 MB in 1 GB steps) and concurrent invocations (1-200)."""

    memory_mb: int
    max_concurrency: int

    def __post_init__(self) -> None:
        require(self.memory_mb in SERVERLESS_MEMORY_MB, "memory_mb", self.memory_mb,
                f"one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}")
        require(type(self.max_concurrency) is int and 1 <= self.max_concurrency <= SERVERLESS_MAX_CONCURRENCY,
                "max_concurrency", self.max_concurrency, f"an integer in [1, {SERVERLESS_MAX_CONCURRENCY}]")

    def variant(self) -> dict[str, Any]:
        """The production variant's ``ServerlessConfig`` (no instance type or count)."""
        return {"ServerlessConfig": {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}}

    def check_memory(self, runtime: str | None) -> None:
        """Refuse a memory size below what ``runtime`` needs (None: unknown, the largest minimum applies)."""
        needed = SERVERLESS_MIN_MEMORY_MB.get(runtime or "", max(SERVERLESS_MIN_MEMORY_MB.values()))
        which = f"a {runtime} archive" if runtime in SERVERLESS_MIN_MEMORY_MB else "an archive whose runtime " \
                                                                                   "could not be read"
        require(self.memory_mb >= needed, "memory_mb", self.memory_mb,
                f"at least {needed} MB for {which} (allowed: "
                f"{', '.join(str(m) for m in SERVERLESS_MEMORY_MB if m >= needed)})")

    @staticmethod
    def environment() -> dict[str, str]:
        """Defaults that hold inside serverless' 4 MB payload and 60 s invocation limits."""
        return {VARIABLES["max_payload_mb"].name: VARIABLES["max_payload_mb"].check(SERVERLESS_PAYLOAD_MB),
                VARIABLES["ts_response_timeout_s"].name:
                    VARIABLES["ts_response_timeout_s"].check(SERVERLESS_TIMEOUT_S)}


@dataclass(frozen=True)
class Asynchronous:
    """An asynchronous endpoint: where answers and failures go, who is told, and requests per instance."""

    output_uri: str
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent_invocations: int | None = None

    def __post_init__(self) -> None:
        S3Uri.parse(self.output_uri, "output")
        for field, topic in (("success_topic", self.success_topic), ("error_topic", self.error_topic)):
            require(topic is None or (topic.startswith("arn:") and ":sns:" in topic), field, topic,
                    "an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:smtx-done")
        require(self.max_concurrent_invocations is None or 1 <= self.max_concurrent_invocations
                <= ASYNC_MAX_CONCURRENT, "max_concurrent_invocations", self.max_concurrent_invocations,
                f"an integer in [1, {ASYNC_MAX_CONCURRENT}]")

    @property
    def failure_uri(self) -> str:
        """Where SageMaker writes the error of a failed request (``{output}/failures/``)."""
        return str(S3Uri.parse(self.output_uri).join("failures").as_prefix())

    def config(self, kms_key: str | None) -> dict[str, Any]:
        """The endpoint config's ``AsyncInferenceConfig``."""
        output: dict[str, Any] = {"S3OutputPath": str(S3Uri.parse(self.output_uri).as_prefix()),
                                  "S3FailurePath": self.failure_uri}
        topics = {key: value for key, value in (("SuccessTopic", self.success_topic),
                                                ("ErrorTopic", self.error_topic)) if value}
        if topics:
            output["NotificationConfig"] = topics
        if kms_key:
            output["KmsKeyId"] = kms_key
        made: dict[str, Any] = {"OutputConfig": output}
        if self.max_concurrent_invocations is not None:
            made["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations}
        return made

    @staticmethod
    def environment() -> dict[str, str]:
        """Asynchronous serving (a line per input line, errors in place), the largest payload the contract takes
        (SageMaker's async limit is 1 GB) and a long timeout."""
        payload, timeout, mode = VARIABLES["max_payload_mb"], VARIABLES["ts_response_timeout_s"], \
            VARIABLES["async_inference"]
        return {mode.name: mode.check(True), payload.name: payload.check(payload.high), timeout.name: timeout.check(
            min(ASYNC_TIMEOUT_S, timeout.high or ASYNC_TIMEOUT_S))}


def archive_runtime(s3: Any, model_data: str) -> str | None:
    """The ``runtime`` an archive's serving.json names (torch when it has none, as the handler reads it);
    None when the archive or its serving.json cannot be read (missing, forbidden, not a tar.gz, over
    MAX_SCAN_BYTES, or a manifest this code does not read)."""
    location = S3Uri.parse(model_data, "model_data")
    try:
        response = s3.get_object(Bucket=location.bucket, Key=location.key)
        if response.get("ContentLength", 0) > MAX_SCAN_BYTES:
            response["Body"].close()
            return None
        with tarfile.open(fileobj=response["Body"], mode="r|gz") as archive:
            for member in archive:  # a stream: serving.json is read as it passes, the rest is skipped
                if member.isfile() and member.name.lstrip("./") == SERVING_FILE:
                    handle = archive.extractfile(member)
                    return ServingManifest.from_dict(json.load(handle)).runtime if handle else None
        return DEFAULT_RUNTIME
    except (ClientError, BotoCoreError, tarfile.TarError, OSError, ValueError, EOFError) as exc:
        log.info("could not read serving.json from %s: %s", model_data, exc)
        return None


@dataclass(frozen=True)
class Capture:
    """Endpoint data capture: requests and answers, a percentage of them, written under ``destination_uri``.

    SageMaker writes ``{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``; ``launcher drift`` reads it.
    Serverless endpoints cannot capture (SageMaker refuses DataCaptureConfig there), checked in ServingConfig.
    """

    destination_uri: str
    percent: int = 100

    def __post_init__(self) -> None:
        S3Uri.parse(self.destination_uri, "capture")
        require(type(self.percent) is int and 1 <= self.percent <= 100, "capture_percent", self.percent,
                "an integer in [1, 100] (the share of requests captured)")

    def config(self, kms_key: str | None) -> dict[str, Any]:
        """The endpoint config's ``DataCaptureConfig``: input and output, JSON and JSON Lines kept as text."""
        made: dict[str, Any] = {
            "EnableCapture": True, "InitialSamplingPercentage": self.percent,
            "DestinationS3Uri": str(S3Uri.parse(self.destination_uri)).rstrip("/"),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": list(CAPTURE_JSON_TYPES)}}
        if kms_key:
            made["KmsKeyId"] = kms_key
        return made
