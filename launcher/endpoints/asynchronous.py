"""Asynchronous endpoints: where answers and failures go, who is told, requests per instance, and the container
environment they need (a line per input line, the largest payload, a long timeout).

The client's side (put the input in S3, InvokeEndpointAsync, wait for the answer) is
``launcher.endpoints.async_invoke``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from launcher.errors import require
from launcher.s3 import S3Uri
from tasks.serving_contract import VARIABLES

#: asynchronous inference: SageMaker's limits are a 1 GB payload and 1 hour of processing per request
ASYNC_TIMEOUT_S = 3600
ASYNC_MAX_CONCURRENT = 1000


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
