"""SageMaker hyperparameter tuning: the CreateHyperParameterTuningJob request built around the training job
``train`` would start, the tuning job's trials, its best trial, and following it.

The ranges and the objective are checked in ``launcher.jobs.tuning_ranges``; the training job definition is
``launcher.jobs.training.training_job_request``'s.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code, not_found
from launcher.errors import SettingError, require
from launcher.jobs.training import TrainingConfig, training_job_request
from launcher.jobs.tuning_ranges import FORMS, MAX_VALUES, ParameterRange
from launcher.names import unique_name

log = logging.getLogger(__name__)

#: our strategy names -> SageMaker's (Grid needs categorical ranges only and no job count: not offered)
STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "hyperband": "Hyperband"}
TERMINAL = ("Completed", "Failed", "Stopped")
#: tuning jobs whose best trial can be deployed (a stopped tuning job's finished trials are final)
DEPLOYABLE = ("Completed", "Stopped")
_EXISTING = "the name of an existing tuning job"

@dataclass(frozen=True)
class TuningConfig:
    """One tuning job, checked once: the training job each trial runs, what to search and how."""

    training: TrainingConfig
    objective: str
    direction: str
    ranges: tuple[ParameterRange, ...]
    max_jobs: int
    max_parallel: int
    strategy: str = "bayesian"
    early_stopping: bool = False
    #: parent tuning jobs (at most 5) whose trials seed this search
    warm_start: tuple[str, ...] = ()
    #: TransferLearning when a parent searched other data or another image, else IdenticalDataAndAlgorithm
    warm_start_type: str = "IdenticalDataAndAlgorithm"
    #: hyperband only: the most dev evaluations a trial reports (SageMaker's MaxResource; each ``dev_`` line of
    #: the objective is one unit). Required there: SageMaker falls back to an ``epochs`` hyperparameter, which
    #: TrainConfig does not have (its ``num_train_epochs`` is not that name)
    max_resource: int | None = None
    name_prefix: str = "smtx-hp"

    def __post_init__(self) -> None:
        require(bool(self.ranges), "range", None, f"at least one --range ({FORMS})")
        names = [r.name for r in self.ranges]
        require(len(set(names)) == len(names), "range", names, "one --range per hyperparameter")
        for kind in ("Integer", "Continuous", "Categorical"):
            require(sum(r.kind == kind for r in self.ranges) <= MAX_VALUES, "range", names,
                    f"at most {MAX_VALUES} {kind.lower()} ranges (SageMaker's limit)")
        require(self.strategy in STRATEGIES, "strategy", self.strategy, f"one of {', '.join(STRATEGIES)}")
        require(isinstance(self.max_jobs, int) and self.max_jobs >= 1, "max_jobs", self.max_jobs,
                "a number of training jobs >= 1")
        require(isinstance(self.max_parallel, int) and 1 <= self.max_parallel <= self.max_jobs, "max_parallel",
                self.max_parallel, f"a number of training jobs in [1, max_jobs ({self.max_jobs})]")
        require(not (self.early_stopping and self.strategy == "hyperband"), "early_stopping", "auto",
                "no --early-stopping with --strategy hyperband (hyperband stops trials itself)")
        if self.strategy == "hyperband":
            require(isinstance(self.max_resource, int) and self.max_resource >= 1, "max_resource", self.max_resource,
                    "with --strategy hyperband, the dev lines a trial logs (one per evaluation, plus the final "
                    "report)")
        else:
            require(self.max_resource is None, "max_resource", self.max_resource, "no value without hyperband")
        require(len(self.warm_start) <= 5, "warm_start", list(self.warm_start), "at most 5 parent tuning jobs")
        require(not self.training.spot, "spot", True, "no --spot with tune (the trials of a tuning job would "
                "share one checkpoint folder and resume from each other's checkpoints)")


def tuning_job_request(name: str, config: TuningConfig) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob arguments (pure: tests assert on it, start_tuning_job sends it).

    The training job definition is the CreateTrainingJob request ``train`` sends, with SageMaker's tuning names
    (HyperParameters -> StaticHyperParameters) and only the fields a definition takes (botocore's API model
    says which), so a setting added to ``train`` reaches the trials without a second list here."""
    job = training_job_request(name, config.training, command="tune")
    job["StaticHyperParameters"] = job.pop("HyperParameters")
    definition = _fit(job, "HyperParameterTrainingJobDefinition")
    definition["AlgorithmSpecification"] = _fit(job["AlgorithmSpecification"], "HyperParameterAlgorithmSpecification")
    ranges: dict[str, list[dict[str, Any]]] = {}
    for parameter in config.ranges:
        ranges.setdefault(f"{parameter.kind}ParameterRanges", []).append(parameter.entry)
    request: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": STRATEGIES[config.strategy],
            "HyperParameterTuningJobObjective": {"Type": config.direction, "MetricName": config.objective},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": config.max_jobs,
                               "MaxParallelTrainingJobs": config.max_parallel},
            "ParameterRanges": ranges,
            # hyperband stops trials itself; SageMaker wants the type left Off with it
            "TrainingJobEarlyStoppingType": "Auto" if config.early_stopping else "Off",
        },
        "TrainingJobDefinition": definition,
        # SageMaker adds a tuning job's tags to every training job it starts
        "Tags": job["Tags"],
    }
    if config.max_resource is not None:
        request["HyperParameterTuningJobConfig"]["StrategyConfig"] = {
            "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": config.max_resource}}
    if config.warm_start:
        request["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in config.warm_start],
            "WarmStartType": config.warm_start_type}
    return request


def _fit(request: dict[str, Any], shape: str) -> dict[str, Any]:
    """The members of ``request`` that SageMaker's ``shape`` has."""
    members = botocore.session.get_session().get_service_model("sagemaker").shape_for(shape).members
    return {key: value for key, value in request.items() if key in members}


def start_tuning_job(clients: Clients, config: TuningConfig) -> str:
    """Create a tuning job under a new unique name (SageMaker allows 32 characters) and return the name."""
    name = unique_name(config.name_prefix, max_length=32)
    clients.sagemaker.create_hyper_parameter_tuning_job(**tuning_job_request(name, config))
    log.info("started tuning job %s", name)
    return name


def describe_tuning_job(clients: Clients, name: str) -> dict[str, Any]:
    """The tuning job's description; SettingError (exit 2) when none has that name."""
    try:
        return dict(clients.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))
    except ClientError as exc:
        if not_found(exc) or error_code(exc) == "ResourceNotFound":
            raise SettingError("tuning_job", name, _EXISTING) from None
        raise


def warm_start_type(clients: Clients, parents: tuple[str, ...], config: TrainingConfig) -> str:
    """Check that each parent exists and has ended (SageMaker's rule), and pick the warm start type: identical
    when every parent trained on the same data with the same image, else transfer learning."""
    identical = True
    for parent in parents:
        try:
            described = describe_tuning_job(clients, parent)
        except SettingError:
            raise SettingError("warm_start", parent, "the name of an existing tuning job") from None
        status = described["HyperParameterTuningJobStatus"]
        require(status in TERMINAL, "warm_start", parent, f"a tuning job that has ended (it is {status})")
        definition = described.get("TrainingJobDefinition") or {}
        channels = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in definition.get("InputDataConfig", [])]
        image = (definition.get("AlgorithmSpecification") or {}).get("TrainingImage")
        identical = identical and channels == [config.data_uri] and image == config.image_uri
    return "IdenticalDataAndAlgorithm" if identical else "TransferLearning"


def list_trials(clients: Clients, name: str) -> list[dict[str, Any]]:
    """Every training job the tuning job started (HyperParameterTrainingJobSummary), oldest first."""
    trials: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100}
    while True:
        page = clients.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
        trials += page.get("TrainingJobSummaries", [])
        if not page.get("NextToken"):
            return sorted(trials, key=lambda t: (str(t.get("CreationTime", "")), t["TrainingJobName"]))
        kwargs["NextToken"] = page["NextToken"]


def best_training_job(clients: Clients, name: str) -> str:
    """The name of the tuning job's best trial; SettingError when it has none yet or is still running."""
    described = describe_tuning_job(clients, name)
    status = described["HyperParameterTuningJobStatus"]
    best = (described.get("BestTrainingJob") or {}).get("TrainingJobName")
    require(status in DEPLOYABLE, "tuning_job", name,
            f"a Completed or Stopped tuning job (it is {status}; follow it with python -m launcher follow-tuning "
            f"{name})")
    require(bool(best), "tuning_job", name, f"a tuning job with a best trial (it is {status} and no trial "
            "reported the objective)")
    return str(best)


def stop_tuning_job(clients: Clients, name: str) -> None:
    """Ask SageMaker to stop the tuning job and its running trials (finished trials and the best one stay)."""
    describe_tuning_job(clients, name)  # an unknown name is the user's mistake: exit 2, not an AWS error
    clients.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    log.info("asked tuning job %s to stop", name)


def _objective_text(summary: dict[str, Any]) -> str:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return f" {metric['MetricName']}={float(metric['Value']):.6f}" if "Value" in metric else ""


def describe_trial(summary: dict[str, Any]) -> str:
    """One line for a trial: name, status, objective value (once reported) and its hyperparameters."""
    tuned = " ".join(f"{k}={v}" for k, v in sorted((summary.get("TunedHyperParameters") or {}).items()))
    reason = f" ({summary['FailureReason']})" if summary.get("FailureReason") else ""
    return f"trial {summary['TrainingJobName']}: {summary['TrainingJobStatus']}{_objective_text(summary)} " \
           f"{tuned}{reason}".rstrip()


class TuningFollower:
    """What has been shown of a tuning job, so each poll shows only what changed: new or changed trials, a new
    best trial, and at the end the outcome."""

    def __init__(self, clients: Clients, name: str, emit: Any) -> None:
        self.clients, self.name, self.emit = clients, name, emit
        self.shown: dict[str, str] = {}
        self.best: str | None = None

    def poll(self) -> dict[str, Any] | None:
        """Show what changed; the description once the tuning job has ended, else None."""
        described = describe_tuning_job(self.clients, self.name)
        for trial in list_trials(self.clients, self.name):
            line = describe_trial(trial)
            if self.shown.get(trial["TrainingJobName"]) != line:
                self.shown[trial["TrainingJobName"]] = line
                self.emit(line)
        best = described.get("BestTrainingJob") or {}
        if best.get("TrainingJobName") and describe_trial(best) != self.best:
            self.best = describe_trial(best)
            self.emit(f"best so far: {self.best[len('trial '):]}")
        return described if described["HyperParameterTuningJobStatus"] in TERMINAL else None


def outcome(described: dict[str, Any]) -> str:
    """How a tuning job ended, for people: status, trial counts, the best trial or the reason."""
    counters = described.get("TrainingJobStatusCounters") or {}
    counts = ", ".join(f"{n} {k}" for k, n in counters.items() if n)
    lines = [f"tuning job {described['HyperParameterTuningJobName']}: {described['HyperParameterTuningJobStatus']}"
             + (f" ({counts})" if counts else "")]
    if described.get("FailureReason"):
        lines.append(f"failure reason: {described['FailureReason']}")
    best = described.get("BestTrainingJob") or {}
    if best.get("TrainingJobName"):
        lines.append(f"best: {describe_trial(best)[len('trial '):]}")
        lines.append(f"deploy with: python -m launcher deploy --tuning-job {described['HyperParameterTuningJobName']}")
    return "\n".join(lines)
