"""SageMaker Batch Transform with the settings our server is built for, then a line-by-line check of the output.

Records go as ``application/jsonlines``, split by line (SplitType=Line), as many as fit per request
(BatchStrategy=MultiRecord, MaxPayloadInMB), and come back assembled by line (AssembleWith=Line) into
``{input name}.out``. SageMaker itself sets SAGEMAKER_BATCH, SAGEMAKER_MAX_PAYLOAD_IN_MB and friends in the
container, so the job does not; it sets the one thing SageMaker does not pass on, ``AssembleWith``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from launcher.aws import Clients
from launcher.checks import DEFAULT_INSTANCE, check_instances, existing_file
from launcher.errors import ResponseError, require
from launcher.jobs.batches import OutputCheck, check_output, read_lines
from launcher.logs import transform_tail
from launcher.names import unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri, download_file, exists, upload_file
from launcher.waiting import Poller, wait_for_status
from tasks.serving_contract import JSONLINES, VARIABLES

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
#: transform job status -> True: done, False: failed, None: keep waiting
TRANSFORM_STATES: dict[str, bool | None] = {
    "Completed": True, "Failed": False, "Stopped": False, "InProgress": None, "Stopping": None,
}


@dataclass(frozen=True)
class TransformConfig:
    """One Batch Transform job over an existing SageMaker model."""

    model_name: str
    instance_type: str = DEFAULT_INSTANCE
    instance_count: int = 1
    #: largest request body; a single record must fit
    max_payload_mb: int = 6
    #: requests in flight per instance; two keeps the GPU busy while the next payload is decoded
    max_concurrent_transforms: int = 2
    invocation_timeout_s: int = 600
    invocation_retries: int = 1
    name_prefix: str = "smtx"
    #: tags and the KMS key for the output and the volume (the model carries VPC and network isolation)
    placement: Placement = field(default_factory=Placement)

    def __post_init__(self) -> None:
        require(bool(self.model_name), "model_name", self.model_name, "the name of a SageMaker model")
        check_instances(self.instance_type, self.instance_count, "transform")
        require(1 <= self.max_payload_mb <= 100, "max_payload_mb", self.max_payload_mb, "an integer in [1, 100]")
        require(self.max_concurrent_transforms >= 1, "max_concurrent_transforms", self.max_concurrent_transforms,
                "an integer >= 1")
        require(1 <= self.invocation_timeout_s <= 3600, "invocation_timeout_s", self.invocation_timeout_s,
                "seconds in [1, 3600]")
        require(0 <= self.invocation_retries <= 3, "invocation_retries", self.invocation_retries,
                "an integer in [0, 3]")
        self.placement.object_tagging("transform")  # the uploaded input carries the tags: S3's limit, checked now


def transform_job_request(name: str, config: TransformConfig, input_uri: str, output_uri: str) -> dict[str, Any]:
    """The CreateTransformJob arguments (pure: tests assert on it, start_transform_job sends it)."""
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": config.model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": config.max_payload_mb,
        "MaxConcurrentTransforms": config.max_concurrent_transforms,
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": config.invocation_timeout_s,
                              "InvocationsMaxRetries": config.invocation_retries},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": JSONLINES,
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": JSONLINES, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": config.instance_type, "InstanceCount": config.instance_count},
        # SageMaker does not tell the container how it assembles: with Line our answers must not end in a newline
        "Environment": {VARIABLES["assemble_with"].name: "Line"},
        "Tags": config.placement.tag_list("transform"),
    }
    if config.placement.kms_key:
        request["TransformOutput"]["KmsKeyId"] = config.placement.kms_key
    volume_key = config.placement.volume_key(config.instance_type)
    if volume_key:
        request["TransformResources"]["VolumeKmsKeyId"] = volume_key
    return request


def start_transform_job(clients: Clients, name: str, config: TransformConfig, input_uri: str,
                        output_uri: str) -> str:
    """Create the transform job ``name``; do not wait."""
    clients.sagemaker.create_transform_job(**transform_job_request(name, config, input_uri, output_uri))
    log.info("started transform job %s", name)
    return name


def wait_for_transform(clients: Clients, name: str, poller: Poller | None = None,
                       emit: Emit = log.info) -> dict[str, Any]:
    """Wait until the job Completed and return its description; raise JobFailed with its FailureReason."""
    return wait_for_status(lambda: clients.sagemaker.describe_transform_job(TransformJobName=name),
                           "TransformJobStatus", TRANSFORM_STATES, "transform job", name,
                           poller or Poller(interval_s=30.0), emit)


@dataclass(frozen=True)
class TransformReport:
    """Where a transform's input and output went, and how its output compares with its input."""

    job_name: str
    input_uri: str
    output_uri: str
    output_path: Path
    check: OutputCheck

    @property
    def ok(self) -> bool:
        """Exactly one output line per input line."""
        return self.check.aligned


@dataclass(frozen=True)
class StartedTransform:
    """A transform job that was started: its name and where its input and output are."""

    job_name: str
    input_path: Path
    input_uri: str
    output_uri: str


def start_transform(clients: Clients, input_path: str | Path, s3_prefix: str,
                    config: TransformConfig) -> StartedTransform:
    """Upload a jsonlines file to ``{prefix}/{job}/input/`` and start the job; do not wait.

    The prefix's bucket must exist (see ``launcher.s3.ensure_bucket``).
    """
    input_path = existing_file(input_path, "input")
    name = unique_name(f"{config.name_prefix}-transform")
    base = S3Uri.parse(s3_prefix, "s3_prefix").join(name)
    input_uri = upload_file(clients.s3, input_path, base.join("input", input_path.name), JSONLINES,
                            config.placement.object_tagging("transform"))
    output_uri = base.join("output").as_prefix()
    start_transform_job(clients, name, config, str(input_uri), str(output_uri))
    return StartedTransform(name, input_path, str(input_uri), str(output_uri))


def run_transform(clients: Clients, input_path: str | Path, s3_prefix: str, config: TransformConfig,
                  output_path: str | Path, poller: Poller | None = None, emit: Emit = log.info) -> TransformReport:
    """Upload a jsonlines file, transform it, wait, download ``{name}.out`` to ``output_path`` and check it.

    The prefix's bucket must exist (see ``launcher.s3.ensure_bucket``); ``output_path``'s folders are created.
    """
    started = start_transform(clients, input_path, s3_prefix, config)
    name, output_uri = started.job_name, S3Uri.parse(started.output_uri)
    wait_for_transform(clients, name, poller, emit)
    answers = output_uri.join(f"{started.input_path.name}.out")
    if not exists(clients.s3, answers):  # SageMaker always writes it; a stand-in such as moto writes nothing
        raise ResponseError(f"transform job {name} is Completed but wrote no {answers}")
    local = download_file(clients.s3, answers, output_path)
    check = check_output(len(read_lines(started.input_path)), read_lines(local, "output"))
    return TransformReport(name, started.input_uri, started.output_uri, local, check)


def follow_transform(clients: Clients, name: str, poller: Poller | None = None,
                     emit: Emit = log.info) -> dict[str, Any]:
    """Show the job's status transitions and CloudWatch lines until it ends; its description when Completed,
    JobFailed with SageMaker's FailureReason otherwise."""
    tail = transform_tail(clients.logs, name)

    def describe() -> dict[str, Any]:
        for line in tail.poll():
            emit(line)
        return dict(clients.sagemaker.describe_transform_job(TransformJobName=name))

    return wait_for_status(describe, "TransformJobStatus", TRANSFORM_STATES, "transform job", name,
                           poller or Poller(interval_s=30.0), emit)


def stop_transform_job(clients: Clients, name: str) -> None:
    """Ask SageMaker to stop a transform job (it ends Stopped; output written so far stays)."""
    clients.sagemaker.stop_transform_job(TransformJobName=name)
    log.info("asked transform job %s to stop", name)
