"""Endpoint data capture: requests and answers written to S3, read back by ``launcher drift``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from launcher.errors import require
from launcher.s3 import S3Uri

#: content types SageMaker writes into capture files as text; any other (CSV aside) is stored as BASE64
CAPTURE_JSON_TYPES = ("application/json", "application/jsonlines")


@dataclass(frozen=True)
class Capture:
    """Endpoint data capture: requests and answers, a percentage of them, written under ``destination_uri``.

    SageMaker writes ``{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``; ``launcher drift`` reads it.
    Serverless endpoints cannot capture (SageMaker refuses DataCaptureConfig there): launcher.endpoints.serverless.
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
