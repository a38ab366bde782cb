"""SageMaker hyperparameter tuning: ranges checked against the one hyperparameter declaration, the
CreateHyperParameterTuningJob request built around the training job ``train`` would start, and the trials.

The ranges' types and bounds are ``training.config.TrainConfig``'s (through ``launcher.hyperparameters.FIELDS``):
an int field gets an integer range, a float field a continuous one, any field a categorical one (``a,b,c``), and
both ends of a range (each value of a categorical one) are checked with TrainConfig itself, so a range whose
trials would fail in the container is refused on the laptop. The objective is one of the metrics the training log
writes (``launcher.metrics``); the training job definition is ``launcher.training.training_job_request``'s.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code, not_found
from launcher.errors import SettingError, require
from launcher.hyperparameters import FIELDS, Hyperparameters
from launcher.metrics import metric_names
from launcher.names import unique_name
from launcher.training import TrainingConfig, training_job_request
from tasks.kinds import task_kind
from training.config import Hyperparameter
from training.metric_lines import LOSSES

log = logging.getLogger(__name__)

#: our strategy names -> SageMaker's (Grid needs categorical ranges only and no job count: not offered)
STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "hyperband": "Hyperband"}
#: the range's optional third part -> SageMaker's ScalingType (none given: Auto, SageMaker chooses)
SCALINGS = {"log": "Logarithmic", "linear": "Linear", "reverse-log": "ReverseLogarithmic"}
#: fields a range may not take: the task is --task, and use_bbox says what the data files hold
FIXED = ("task_name", "use_bbox")
MAX_VALUES = 30  # SageMaker's limit on the values of one categorical range, and on ranges per kind
TERMINAL = ("Completed", "Failed", "Stopped")
#: tuning jobs whose best trial can be deployed (a stopped tuning job's finished trials are final)
DEPLOYABLE = ("Completed", "Stopped")
_RANGE = re.compile(r"(?P<name>[a-z_][a-z0-9_]*)=(?P<spec>.+)")
_FORMS = "name=lo:hi[:log|linear|reverse-log] or name=a,b,c"
_EXISTING = "the name of an existing tuning job"


@dataclass(frozen=True)
class ParameterRange:
    """One ``--range``: its SageMaker kind (Integer, Continuous, Categorical) and its entry in ParameterRanges."""

    name: str
    kind: str
    entry: dict[str, Any]


def tunable() -> list[str]:
    """The hyperparameters a range may take: every TrainConfig field but the fixed ones."""
    return [name for name in FIELDS if name not in FIXED]


def _limits(declared: Hyperparameter) -> str:
    """What a field allows, in words: its type and its declared bounds or choices."""
    return f"{declared.name} is {declared.kind.__name__}: {declared.describe().rsplit(' (', 1)[-1].rstrip(')')}"


def _refuse(item: str, problem: str) -> SettingError:
    """One line naming the flag, the value and the problem (the problem names the field and what it allows)."""
    return SettingError("range", item, problem, message=f"--range {item}: {problem}")


def parse_range(item: str, task: str, static: dict[str, Any]) -> ParameterRange:
    """``--range name=lo:hi[:scale]`` or ``--range name=a,b,c``, typed and bounded by the field's declaration.

    Each end (each value) is checked with TrainConfig together with ``static`` (the fixed hyperparameters), so a
    range whose trial would be refused by the container (``max_steps=0``, a stride too long for a window) is
    refused here."""
    match = _RANGE.fullmatch(item.strip())
    if match is None:
        raise _refuse(item, f"expected {_FORMS}")
    name, spec = match.group("name"), match.group("spec")
    if name not in FIELDS:
        raise _refuse(item, f"no hyperparameter {name!r}; tunable: {', '.join(tunable())}")
    declared = FIELDS[name]
    if name in FIXED:
        raise _refuse(item, f"{name} is fixed ({'--task' if name == 'task_name' else 'it describes the data'}); "
                            f"tunable: {', '.join(tunable())}")
    if name in static:
        raise _refuse(item, f"{name} is also given as a fixed value (--{name.replace('_', '-')}); give one of them")
    if "," in spec or declared.kind in (str, bool):
        return _categorical(item, declared, spec.split(","), task, static)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in SCALINGS):
        raise _refuse(item, f"expected {_FORMS} ({_limits(declared)})")
    low, high = (_value(item, declared, text) for text in parts[:2])
    if not low < high:
        raise _refuse(item, f"expected lo < hi ({_limits(declared)})")
    scaling = SCALINGS[parts[2]] if len(parts) == 3 else "Auto"
    if scaling != "Linear" and scaling != "Auto":
        _require_range(item, low > 0 and high < (1 if scaling == "ReverseLogarithmic" else float("inf")),
                       f"a {parts[2]} range needs 0 < lo" + (" and hi < 1" if parts[2] == "reverse-log" else ""))
    # zero lies inside many ranges and is where sentinels live (max_steps: 0 trains nothing, -1 means epochs)
    probes = [low, high] + ([declared.kind(0)] if low < 0 < high else [])
    for value in probes:
        _check_value(item, declared, value, task, static)
    kind = "Integer" if declared.kind is int else "Continuous"
    entry = {"Name": name, "MinValue": _text(low), "MaxValue": _text(high), "ScalingType": scaling}
    return ParameterRange(name, kind, entry)


def _categorical(item: str, declared: Hyperparameter, values: list[str], task: str,
                 static: dict[str, Any]) -> ParameterRange:
    values = [v.strip() for v in values]
    _require_range(item, all(values) and len(set(values)) == len(values) and 1 <= len(values) <= MAX_VALUES,
                   f"expected 1-{MAX_VALUES} distinct non-empty values a,b,c ({_limits(declared)})")
    for text in values:
        _check_value(item, declared, _value(item, declared, text), task, static)
    return ParameterRange(declared.name, "Categorical", {"Name": declared.name, "Values": values})


def _value(item: str, declared: Hyperparameter, text: str) -> Any:
    """One end or value, read as the field's type (the container reads the same string the same way)."""
    try:
        if declared.kind is bool:
            return {"true": True, "false": False}[text.strip().lower()]
        return declared.kind(text.strip())
    except (KeyError, ValueError):
        raise _refuse(item, f"{text!r} is not of type {declared.kind.__name__} ({_limits(declared)})") from None


def _check_value(item: str, declared: Hyperparameter, value: Any, task: str, static: dict[str, Any]) -> None:
    try:
        Hyperparameters(task, **{**static, declared.name: value})
    except SettingError as exc:
        raise _refuse(item, f"{_text(value)} is refused: {exc} ({_limits(declared)})") from None


def _require_range(item: str, ok: bool, problem: str) -> None:
    if not ok:
        raise _refuse(item, problem)


def _text(value: Any) -> str:
    """A value as SageMaker's ranges carry it (strings), written as the container parses it."""
    return ("true" if value else "false") if isinstance(value, bool) else repr(value) if isinstance(value, float) \
        else str(value)


def objectives(task: str) -> list[str]:
    """The metrics a tuning job may optimise: the dev split's, as the log writes them.

    The test split's are logged too but would make the test scores of the chosen model optimistic, and
    train_loss scores the training batches; both are refused."""
    return [name for name in metric_names(task) if name.startswith("dev_")]


def objective_direction(task: str, objective: str, maximize: bool | None) -> str:
    """``Maximize`` or ``Minimize``: as asked, or where the direction is a known fact (the task's primary score,
    the losses); otherwise the user must say."""
    allowed = objectives(task)
    require(objective in allowed, "objective", objective, f"one of the metrics {task} logs for dev: "
            f"{', '.join(allowed)} (test_ scores would be optimistic after tuning on them)")
    kind = task_kind(task)
    known = {f"dev_{kind.primary_metric}": kind.greater_is_better, **{loss: False for loss in LOSSES}}
    if maximize is None:
        require(objective in known, "objective", objective, "--maximize or --minimize with it (the direction is "
                f"known only for {', '.join(sorted(n for n in known if n in allowed))})")
        maximize = known[objective]
    return "Maximize" if maximize else "Minimize"


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
        require(bool(self.ranges), "range", None, f"at least one --range ({_FORMS})")
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
