"""Follow a training job to its end: status transitions, its CloudWatch log lines, then metrics or the reason."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from launcher.aws import TRAINING_LOG_GROUP, Clients
from launcher.jobs.metrics import format_metrics, parse_metrics
from launcher.jobs.training import describe_training_job
from launcher.logs import LogTail
from launcher.waiting import Poller

log = logging.getLogger(__name__)

Emit = Callable[[str], None]
TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class TrainingResult:
    """How a training job ended."""

    job_name: str
    status: str
    failure_reason: str | None = None
    #: final metrics: SageMaker's FinalMetricDataList, completed by the last values seen in the log
    metrics: dict[str, float] = field(default_factory=dict)
    model_artifact: str | None = None
    billable_seconds: int | None = None

    @property
    def ok(self) -> bool:
        """True when the job Completed."""
        return self.status == "Completed"

    def describe(self) -> str:
        """A few lines for people: the outcome, the metrics, where the model is."""
        lines = [f"training job {self.job_name}: {self.status}"]
        if self.failure_reason:
            lines.append(f"failure reason: {self.failure_reason}")
        if self.metrics:
            lines.append(format_metrics(self.metrics))
        if self.billable_seconds is not None:
            lines.append(f"billable seconds: {self.billable_seconds}")
        if self.model_artifact:
            lines.append(f"model artifact: {self.model_artifact}")
        return "\n".join(lines)


class _Follower:
    """What has been shown so far, so each poll shows only what is new."""

    def __init__(self, clients: Clients, job_name: str, emit: Emit) -> None:
        self.clients = clients
        self.job_name = job_name
        self.emit = emit
        self.shown: set[tuple[str, str]] = set()
        self.log_metrics: dict[str, float] = {}
        self.tail = LogTail(clients.logs, TRAINING_LOG_GROUP, f"{job_name}/")

    def _show_status(self, job: dict[str, Any]) -> None:
        transitions = job.get("SecondaryStatusTransitions") or []
        steps = [(t["Status"], t.get("StatusMessage", "")) for t in transitions]
        steps.append((job["TrainingJobStatus"], ""))
        for status, message in steps:
            if (status, message) not in self.shown:
                self.shown.add((status, message))
                self.emit(f"status: {status}" + (f" - {message}" if message else ""))

    def poll(self) -> TrainingResult | None:
        job = describe_training_job(self.clients, self.job_name)
        self._show_status(job)
        for line in self.tail.poll():
            self.emit(line)
            self.log_metrics.update(parse_metrics(line))
        return self._result(job) if job["TrainingJobStatus"] in TERMINAL else None

    def _result(self, job: dict[str, Any]) -> TrainingResult:
        final = {m["MetricName"]: float(m["Value"]) for m in job.get("FinalMetricDataList") or []}
        status = job["TrainingJobStatus"]
        artifact = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts") if status == "Completed" else None
        return TrainingResult(
            job_name=self.job_name, status=status, failure_reason=job.get("FailureReason"),
            metrics={**self.log_metrics, **final}, model_artifact=artifact,
            billable_seconds=job.get("BillableTimeInSeconds"),
        )


def follow_training_job(clients: Clients, job_name: str, poller: Poller | None = None,
                        emit: Emit = log.info) -> TrainingResult:
    """Show status transitions and log lines through ``emit`` until the job ends; return how it ended.

    Does not raise when the job fails: the result carries the status and SageMaker's FailureReason.
    """
    follower = _Follower(clients, job_name, emit)
    result = (poller or Poller()).until(follower.poll, f"training job {job_name}")
    if result.failure_reason:
        emit(f"failure reason: {result.failure_reason}")
    return result
