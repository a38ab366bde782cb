"""Stand-ins, on the moto side, for what SageMaker's tuner does and moto 5.2.5 does not (the launcher's tests only).

What moto 5.2.5 has: CreateHyperParameterTuningJob (it stores the request as given, tags included),
DescribeHyperParameterTuningJob, ListHyperParameterTuningJobs and DeleteHyperParameterTuningJob. What it lacks or
makes up:

- a new tuning job is ``Completed`` at once, starts no training job, and reports a made-up best trial
  (``BestTrainingJob.TrainingJobName == "FakeTrainingJobName"``, objective ``Accuracy``) that does not exist;
- ListTrainingJobsForHyperParameterTuningJob and StopHyperParameterTuningJob are not implemented.

``TuningDriver`` plays the tuner in this process (in-process ``mock_aws`` or a ``ThreadedMotoServer`` started
here): it puts the job back to ``InProgress`` with no best trial, then at each poll runs one trial as a real moto
training job made from the tuning job's own ``TrainingJobDefinition`` and the trial's values, and updates the
best trial and the counters as SageMaker does. ``accept_tuning_calls`` gives moto the two missing calls.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Iterator

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

#: tuning job name -> the HyperParameterTrainingJobSummary list ListTrainingJobsForHyperParameterTuningJob answers
TRIALS: dict[str, list[dict[str, Any]]] = {}


def accept_tuning_calls() -> None:
    """ListTrainingJobsForHyperParameterTuningJob (from ``TRIALS``) and StopHyperParameterTuningJob (the job ends
    Stopped at once), patched on moto's response class so they also work through a ThreadedMotoServer here."""

    def list_trials(self: SageMakerResponse) -> Any:
        name = self._get_param("HyperParameterTuningJobName")
        self.sagemaker_backend.describe_hyper_parameter_tuning_job(name)  # moto's not-found error for a bad name
        return ActionResult({"TrainingJobSummaries": TRIALS.get(name, [])})

    def stop(self: SageMakerResponse) -> Any:
        name = self._get_param("HyperParameterTuningJobName")
        self.sagemaker_backend.describe_hyper_parameter_tuning_job(name)
        self.sagemaker_backend.hyper_parameter_tuning_jobs[name].hyper_parameter_tuning_job_status = "Stopped"
        return ActionResult({})

    SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = list_trials  # type: ignore[attr-defined]
    SageMakerResponse.stop_hyper_parameter_tuning_job = stop  # type: ignore[attr-defined]


@dataclass
class Trial:
    """One trial the driver runs: its tuned values (strings, as SageMaker passes them) and how it ends."""

    values: dict[str, str]
    objective: float | None
    status: str = "Completed"
    failure_reason: str | None = None


class TuningDriver:
    """Moves a moto tuning job through ``trials``, one per poll: pass ``driver.sleep`` as ``Poller.sleep``; after the
    last trial the tuning job ends ``final_status``."""

    def __init__(self, sagemaker: Any, region: str, name: str, trials: list[Trial],
                 final_status: str = "Completed") -> None:
        self.sagemaker, self.region, self.name, self.final_status = sagemaker, region, name, final_status
        self._trials: Iterator[Trial] = iter(trials)
        self.best: dict[str, Any] | None = None

    def _job(self) -> Any:
        return sagemaker_backends[DEFAULT_ACCOUNT_ID][self.region].hyper_parameter_tuning_jobs[self.name]

    def start(self) -> None:
        """What SageMaker shows right after creation: InProgress, no trial, no best trial."""
        job = self._job()
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.best_training_job = job.OverallBestTrainingJob = None
        job.hyper_parameter_tuning_end_time = None
        job.training_job_status_counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0,
                                            "NonRetryableError": 0, "Stopped": 0}
        TRIALS[self.name] = []

    def sleep(self, _: float) -> None:
        """Run the next trial; with none left, end the tuning job."""
        trial = next(self._trials, None)
        if trial is None:
            self._job().hyper_parameter_tuning_job_status = self.final_status
            return
        self.run(trial)

    def run(self, trial: Trial) -> dict[str, Any]:
        """A real moto training job from the tuning job's definition and the trial's values, and its summary."""
        job = self._job()
        definition, config = job.training_job_definition, job.hyper_parameter_tuning_job_config
        number = len(TRIALS[self.name]) + 1
        name = f"{self.name}-{number:03d}-{secrets.token_hex(4)}"
        request = {k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "TuningObjective",
                                                                     "HyperParameterRanges", "DefinitionName")}
        self.sagemaker.create_training_job(TrainingJobName=name, Tags=job.tags or [],
                                           HyperParameters={**definition["StaticHyperParameters"], **trial.values},
                                           **request)
        objective = config["HyperParameterTuningJobObjective"]
        summary: dict[str, Any] = {
            "TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:{self.region}:{DEFAULT_ACCOUNT_ID}:"
                                                       f"training-job/{name}",
            "TuningJobName": self.name, "CreationTime": job.creation_time, "TrainingJobStatus": trial.status,
            "TunedHyperParameters": trial.values, "ObjectiveStatus": "Succeeded" if trial.objective is not None
            else "Failed"}
        if trial.objective is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": trial.objective}
        if trial.failure_reason:
            summary["FailureReason"] = trial.failure_reason
        TRIALS[self.name].append(summary)
        job.training_job_status_counters[trial.status if trial.status == "Completed" else "NonRetryableError"] += 1
        sign = 1 if objective["Type"] == "Maximize" else -1
        best_value = (self.best or {}).get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
        if trial.objective is not None and (best_value is None or sign * trial.objective > sign * best_value):
            self.best = summary
            job.best_training_job = summary
        return summary
