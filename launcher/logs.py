"""Follow CloudWatch log streams by prefix, returning only lines not seen before (training jobs, transform jobs,
endpoints)."""
from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from launcher.aws import ENDPOINT_LOG_GROUP, TRANSFORM_LOG_GROUP, error_code

log = logging.getLogger(__name__)

MAX_PAGES_PER_POLL = 50  # bounds one poll; the rest comes on the next one


class LogTail:
    """New lines of every stream in ``group`` whose name starts with ``prefix``, oldest first per stream.

    Lines of a multi-instance job are tagged with their instance (``[algo-2] ...``).
    """

    def __init__(self, logs: Any, group: str, prefix: str) -> None:
        self.logs = logs
        self.group = group
        self.prefix = prefix
        self._tokens: dict[str, str | None] = {}

    def _streams(self) -> list[str]:
        try:
            by_prefix = {"logStreamNamePrefix": self.prefix} if self.prefix else {}  # AWS refuses an empty one
            pages = self.logs.get_paginator("describe_log_streams").paginate(logGroupName=self.group, **by_prefix)
            return sorted(s["logStreamName"] for page in pages for s in page.get("logStreams", []))
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":  # no output yet: the group appears later
                return []
            raise

    def _read(self, stream: str) -> list[str]:
        lines: list[str] = []
        for _ in range(MAX_PAGES_PER_POLL):
            kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
            token = self._tokens.get(stream)
            if token:
                kwargs["nextToken"] = token
            page = self.logs.get_log_events(**kwargs)
            lines.extend(event["message"].rstrip("\n") for event in page.get("events", []))
            self._tokens[stream] = page.get("nextForwardToken")
            if not page.get("events") or page.get("nextForwardToken") == token:
                break
        return lines

    def poll(self) -> list[str]:
        """Lines written since the previous poll."""
        streams = self._streams()
        tagged = len(streams) > 1
        out: list[str] = []
        for stream in streams:
            host = stream[len(self.prefix):].split("-")
            tag = f"[{'-'.join(host[:2])}] " if tagged else ""
            out.extend(tag + line for line in self._read(stream))
        return out


def endpoint_tail(logs: Any, endpoint: str) -> LogTail:
    """The log lines of every instance of ``endpoint`` (its own group; streams ``{variant}/{instance}``)."""
    return LogTail(logs, ENDPOINT_LOG_GROUP.format(endpoint=endpoint), "")


def transform_tail(logs: Any, job: str) -> LogTail:
    """The log lines of every instance of transform job ``job``."""
    return LogTail(logs, TRANSFORM_LOG_GROUP, f"{job}/")
