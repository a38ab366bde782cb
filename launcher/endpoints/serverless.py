"""Serverless endpoints, every rule of them in one place: memory and concurrency, the memory an archive's runtime
needs, the payload and timeout limits the container must keep, and what a serverless endpoint cannot have
(instances, a GPU image, asynchronous mode, data capture, a VPC, network isolation, a KMS key).

``Serverless`` is a small config, checked when made, that gives the endpoint config's variant its
``ServerlessConfig`` and the container the environment it needs. ``ServingConfig`` (``launcher.endpoints.deploy``)
and the ``deploy --serverless`` flags (``launcher.cli.support``) both check through the functions below, so a rule
is worded once. Variable names and bounds come from ``tasks.serving_contract.VARIABLES``, the container's own
contract, never from here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from launcher.errors import SettingError, require
from launcher.placement import Placement
from launcher.s3 import MANIFEST_READ_ERRORS, archive_manifest
from tasks.serving_contract import VARIABLES

log = logging.getLogger(__name__)

SERVERLESS_MEMORY_MB = tuple(range(1024, 6145, 1024))
SERVERLESS_MAX_CONCURRENCY = 200
#: serverless limits: a 4 MB request and response, 60 s per invocation
SERVERLESS_PAYLOAD_MB = 4
SERVERLESS_TIMEOUT_S = 60
#: the container's timeouts, which must fit in SERVERLESS_TIMEOUT_S
_TIMEOUTS = (VARIABLES["ts_response_timeout_s"].name, VARIABLES["model_server_timeout_s"].name)
_NO = "serverless endpoints have"
#: the smallest serverless memory each runtime (serving.json's ``runtime``) starts and answers in, in MB. Measured
#: (bench/cold_start.py, the MiniLM-L6 classifier): all of serve -- entrypoint, frontend, worker -- peaks at
#: 450 MB with an ONNX archive and 735 MB with a torch one; a 4 MB request adds up to ~250 MB (one 2M-character
#: slice through the tokenizer, its records and answer). Rounded up to SageMaker's 1 GB steps with that room.
SERVERLESS_MIN_MEMORY_MB: dict[str, int] = {"onnx": 1024, "torch": 2048}
#: archives larger than this are not scanned for serving.json (the torch minimum, the larger, applies)
MAX_SCAN_BYTES = 2 * 1024**3


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


def check_flags(serverless: bool, memory_mb: int | None, max_concurrency: int | None) -> None:
    """``--memory-mb`` and ``--max-concurrency`` are refused without ``--serverless``, naming the flag."""
    for flag, value in (("memory_mb", memory_mb), ("max_concurrency", max_concurrency)):
        require(serverless or value is None, flag, value, "no value without --serverless")


def from_flags(memory_mb: int | None, max_concurrency: int | None) -> Serverless:
    """The Serverless config of ``deploy --serverless``, which needs both sizes."""
    if memory_mb is None or max_concurrency is None:
        raise SettingError("serverless", True, "--memory-mb N and --max-concurrency N with it")
    return Serverless(memory_mb, max_concurrency)


def check_not_async(asynchronous: bool) -> None:
    """A serverless endpoint has no asynchronous mode."""
    require(not asynchronous, "serverless", True, "either --serverless or --async")


def check_no_instances(instance_type: str | None, instance_count: int | None, gpu_image: str | None = None) -> None:
    """A serverless endpoint has no instances, so no instance type, no instance count and no GPU image (None: not
    given)."""
    require(instance_type is None and instance_count is None and gpu_image is None, "instance_type", instance_type,
            f"no --instance-type, --instance-count or --gpu-image with --serverless ({_NO} no instances and no GPU)")


def check_endpoint(instance_type: str | None, instance_count: int, asynchronous: bool, capture_uri: str | None,
                   placement: Placement) -> None:
    """What a serverless endpoint cannot have besides its own settings: instances, asynchronous mode, data capture,
    a VPC or network isolation, a KMS key. ``instance_count`` 1 is the config's default, read as not given."""
    check_no_instances(instance_type, None if instance_count == 1 else instance_count)
    check_not_async(asynchronous)
    require(capture_uri is None, "capture", capture_uri,
            f"no --capture ({_NO} no data capture; SageMaker refuses DataCaptureConfig on them)")
    require(not placement.in_vpc and not placement.network_isolation, "subnet", list(placement.subnets),
            f"no --subnet/--security-group/--network-isolation ({_NO} none)")
    require(placement.kms_key is None, "kms_key", placement.kms_key,
            f"no KMS key ({_NO} no ML volume and write nothing to S3)")


def check_limits(environment: dict[str, Any]) -> None:
    """The container's limits (its parsed environment, by variable name) must hold inside serverless' 4 MB payload
    and 60 s invocation limits."""
    payload = VARIABLES["max_payload_mb"].name
    require(environment[payload] <= SERVERLESS_PAYLOAD_MB, payload, str(environment[payload]),
            f"at most {SERVERLESS_PAYLOAD_MB} on a serverless endpoint")
    for name in _TIMEOUTS:
        if name in environment:
            require(environment[name] <= SERVERLESS_TIMEOUT_S, name, str(environment[name]),
                    f"seconds in [1, {SERVERLESS_TIMEOUT_S}] on a serverless endpoint")


def archive_runtime(s3: Any, model_data: str) -> str | None:
    """The ``runtime`` an archive's serving.json names (torch when it has none, as the handler reads it);
    None when the archive or its serving.json cannot be read (missing, forbidden, not a tar.gz, over
    MAX_SCAN_BYTES, or a manifest this code does not read)."""
    try:
        return archive_manifest(s3, model_data, max_bytes=MAX_SCAN_BYTES).runtime
    except MANIFEST_READ_ERRORS as exc:
        log.info("could not read serving.json from %s: %s", model_data, exc)
        return None
