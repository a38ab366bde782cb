"""A SageMaker Pipeline: Train -> Evaluate -> CheckObjective -> Register, or ObjectiveMissed saying why.

Each step's Arguments are the request the single command sends, made by the same function: Train is
``launcher.jobs.training.training_job_request``, Register is ``launcher.registry.package_request``. Only what a
pipeline decides when it runs is replaced by a pipeline expression: the job name is the pipeline's to give, the
archive is Train's output, the metrics are Evaluate's. Evaluate is a Processing job that runs our training image's
``python -m entrypoints evaluate`` on the archive and the data prefix (scoring its test split as serving
decodes); CheckObjective compares one test score with the ``ObjectiveThreshold`` parameter. When the score misses,
the Fail step ends the run with the score and the threshold in its message, and nothing is registered.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from launcher import registry
from launcher.aws import Clients, missing_anyhow, resource_exists
from launcher.checks import check_instances
from launcher.errors import SettingError, require
from launcher.jobs.training import TrainingConfig, training_job_request
from launcher.s3 import S3Uri
from tasks.kinds import task_kind

VERSION = "2020-12-01"
THRESHOLD = "ObjectiveThreshold"
TRAIN, EVALUATE, CHECK, REGISTER, MISSED = "Train", "Evaluate", "CheckObjective", "Register", "ObjectiveMissed"
#: the evaluation container's folders under SageMaker Processing's /opt/ml/processing (entrypoints/evaluate.py)
PROCESSING = "/opt/ml/processing"
EVALUATION_OUTPUT, EVALUATION_FILE, PROPERTY_FILE = "evaluation", "evaluation.json", "Evaluation"
EVALUATE_COMMAND = ["python3", "-m", "entrypoints", "evaluate"]
ARCHIVE = {"Get": f"Steps.{TRAIN}.ModelArtifacts.S3ModelArtifacts"}
_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline, every setting checked once."""

    name: str
    training: TrainingConfig
    group: str
    #: a test score the task logs, ``test_<metric>``
    objective: str
    threshold: float
    maximize: bool
    serving_image: str
    gpu_serving_image: str | None
    #: the CPU training image: it holds ``entrypoints evaluate`` and the task code
    evaluation_image: str
    evaluation_instance_type: str = "ml.m5.xlarge"
    evaluation_max_runtime_s: int = 3600

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and bool(_PIPELINE_NAME.fullmatch(self.name)), "name", self.name,
                "a pipeline name: letters, digits and hyphens, starting with a letter or digit")
        registry.check_group(self.group)
        names = objectives(self.training.hyperparameters.task_name)
        require(self.objective in names, "objective", self.objective, f"one of {', '.join(names)} (the test scores "
                f"{self.training.hyperparameters.task_name} logs; the evaluation step scores the test split)")
        require(isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold), "threshold",
                self.threshold, "a finite number")
        require(not self.training.spot, "spot", True, "no --spot in a pipeline (each run would resume from the "
                "previous run's checkpoints)")
        registry.check_images(self.serving_image, self.gpu_serving_image)
        check_instances(self.evaluation_instance_type, 1, "processing")

    @property
    def metric(self) -> str:
        """The objective's score name in evaluation.json's ``test`` (``test_f1`` -> ``f1``)."""
        return self.objective.split("_", 1)[1]


def objectives(task: str) -> list[str]:
    """The objectives a pipeline can check: ``test_`` and each of the task's scores."""
    return [f"test_{name}" for name in task_kind(task).metric_names]


def default_maximize(task: str, objective: str) -> bool:
    """The task's own direction for its primary metric; larger is better for the other scores (accuracy, F1,
    correlations), smaller for the regression errors."""
    kind = task_kind(task)
    name = objective.split("_", 1)[1]
    return kind.greater_is_better if name == kind.primary_metric else name not in ("mse", "mae")


def _join(*values: Any) -> dict[str, Any]:
    return {"Std:Join": {"On": "/", "Values": list(values)}}


def evaluation_prefix(config: PipelineConfig) -> dict[str, Any]:
    """Where a run's evaluation.json goes: one folder per execution, so a registered version's metrics are never
    overwritten by a later run."""
    output = S3Uri.parse(config.training.output_uri)
    return _join(str(output.join("pipelines", config.name, EVALUATION_OUTPUT)).rstrip("/"),
                 {"Get": "Execution.PipelineExecutionId"})


def train_step(config: PipelineConfig) -> dict[str, Any]:
    """Train: the training job request, without the name (the pipeline names each run's job)."""
    request = training_job_request(config.name, config.training)
    request.pop("TrainingJobName")
    return {"Name": TRAIN, "Type": "Training", "Arguments": request}


def evaluate_step(config: PipelineConfig) -> dict[str, Any]:
    """Evaluate: our image scores Train's archive on the data prefix's test split (entrypoints/evaluate.py)."""
    training, placement = config.training, config.training.placement

    def mounted(name: str, uri: Any) -> dict[str, Any]:
        return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": f"{PROCESSING}/{name}",
                                               "S3DataType": "S3Prefix", "S3InputMode": "File",
                                               "S3DataDistributionType": "FullyReplicated"}}

    cluster: dict[str, Any] = {"InstanceType": config.evaluation_instance_type, "InstanceCount": 1,
                               "VolumeSizeInGB": training.volume_gb}
    outputs: dict[str, Any] = {"Outputs": [{"OutputName": EVALUATION_OUTPUT, "S3Output": {
        "S3Uri": evaluation_prefix(config), "LocalPath": f"{PROCESSING}/{EVALUATION_OUTPUT}",
        "S3UploadMode": "EndOfJob"}}]}
    network: dict[str, Any] = {"EnableNetworkIsolation": placement.network_isolation}
    if placement.vpc_config():
        network["VpcConfig"] = placement.vpc_config()
    if placement.kms_key:
        outputs["KmsKeyId"] = placement.kms_key
        if placement.volume_key(config.evaluation_instance_type):
            cluster["VolumeKmsKeyId"] = placement.kms_key
    arguments = {
        "ProcessingResources": {"ClusterConfig": cluster},
        "AppSpecification": {"ImageUri": config.evaluation_image, "ContainerEntrypoint": EVALUATE_COMMAND},
        "RoleArn": training.role_arn,
        # the data prefix with its "/": a bare prefix would also mount a sibling folder named like it plus more
        "ProcessingInputs": [mounted("model", ARCHIVE),
                             mounted("data", str(S3Uri.parse(training.data_uri).as_prefix()))],
        "ProcessingOutputConfig": outputs,
        "NetworkConfig": network,
        "StoppingCondition": {"MaxRuntimeInSeconds": config.evaluation_max_runtime_s},
        "Tags": placement.tag_list("pipeline"),
    }
    return {"Name": EVALUATE, "Type": "Processing", "Arguments": arguments,
            "PropertyFiles": [{"PropertyFileName": PROPERTY_FILE, "OutputName": EVALUATION_OUTPUT,
                               "FilePath": EVALUATION_FILE}]}


def objective_value(config: PipelineConfig) -> dict[str, Any]:
    """The objective as the run reads it: from Evaluate's evaluation.json."""
    return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{EVALUATE}.PropertyFiles.{PROPERTY_FILE}"},
                            "Path": f"test.{config.metric}"}}


def register_step(config: PipelineConfig) -> dict[str, Any]:
    """Register: the version ``register`` would create, for Train's archive and Evaluate's scores."""
    metrics = {"Std:Join": {"On": "", "Values": [evaluation_prefix(config), f"/{EVALUATION_FILE}"]}}
    request = registry.package_request(
        config.group, config.training.hyperparameters.task_name, ARCHIVE, metrics, config.serving_image,
        config.gpu_serving_image, config.training.placement,
        description=f"registered by pipeline {config.name} ({config.objective} checked against {THRESHOLD})")
    return {"Name": REGISTER, "Type": "RegisterModel", "Arguments": request}


def missed_step(config: PipelineConfig) -> dict[str, Any]:
    """ObjectiveMissed: the run fails with the score and the threshold, and registers nothing."""
    relation = "below" if config.maximize else "above"
    message = {"Std:Join": {"On": " ", "Values": [
        f"{config.objective} =", objective_value(config), f"is {relation} {THRESHOLD} =",
        {"Get": f"Parameters.{THRESHOLD}"}, f"; nothing was registered in {config.group}"]}}
    return {"Name": MISSED, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


def check_step(config: PipelineConfig) -> dict[str, Any]:
    """CheckObjective: the objective against the threshold, then Register or ObjectiveMissed."""
    condition = {"Type": "GreaterThanOrEqualTo" if config.maximize else "LessThanOrEqualTo",
                 "LeftValue": objective_value(config), "RightValue": {"Get": f"Parameters.{THRESHOLD}"}}
    return {"Name": CHECK, "Type": "Condition", "Arguments": {
        "Conditions": [condition], "IfSteps": [register_step(config)], "ElseSteps": [missed_step(config)]}}


def definition(config: PipelineConfig) -> dict[str, Any]:
    """The pipeline definition (SageMaker's pipeline definition JSON, version 2020-12-01)."""
    return {"Version": VERSION, "Metadata": {},
            "Parameters": [{"Name": THRESHOLD, "Type": "Float", "DefaultValue": float(config.threshold)}],
            "Steps": [train_step(config), evaluate_step(config), check_step(config)]}


def pipeline_request(config: PipelineConfig) -> dict[str, Any]:
    """The CreatePipeline (and UpdatePipeline, less Tags) arguments."""
    direction = ">=" if config.maximize else "<="
    return {"PipelineName": config.name, "PipelineDefinition": json.dumps(definition(config)),
            "PipelineDescription": f"train, evaluate, register in {config.group} when {config.objective} "
                                   f"{direction} {THRESHOLD}",
            "RoleArn": config.training.role_arn, "Tags": config.training.placement.tag_list("pipeline")}


def pipeline_exists(clients: Clients, name: str) -> bool:
    """Whether a pipeline of that name exists."""
    return resource_exists(clients.sagemaker.describe_pipeline, missing_anyhow, PipelineName=name)


def create_or_update(clients: Clients, config: PipelineConfig) -> tuple[str, bool]:
    """Create the pipeline, or give the existing one this definition; (ARN, whether it was created)."""
    request = pipeline_request(config)
    if pipeline_exists(clients, config.name):
        request.pop("Tags")  # UpdatePipeline takes none: the pipeline keeps the tags it was created with
        return str(clients.sagemaker.update_pipeline(**request)["PipelineArn"]), False
    return str(clients.sagemaker.create_pipeline(**request)["PipelineArn"]), True


def _existing(clients: Clients, name: str) -> None:
    require(pipeline_exists(clients, name), "pipeline", name,
            "an existing pipeline (python -m launcher pipeline create NAME ... makes one)")


def start(clients: Clients, name: str, threshold: float | None = None) -> str:
    """Start a run (with ``threshold`` instead of the definition's ObjectiveThreshold); its ARN."""
    require(threshold is None or math.isfinite(threshold), "threshold", threshold, "a finite number")
    _existing(clients, name)
    parameters = [] if threshold is None else [{"Name": THRESHOLD, "Value": repr(float(threshold))}]
    started = clients.sagemaker.start_pipeline_execution(PipelineName=name, PipelineParameters=parameters)
    return str(started["PipelineExecutionArn"])


@dataclass(frozen=True)
class RunReport:
    """One run: its status and why, each step, and what it registered (or why nothing)."""

    arn: str
    status: str
    failure: str | None
    steps: list[dict[str, Any]]
    #: why the steps could not be read (a missing permission), else None
    steps_error: str | None = None

    def lines(self) -> list[str]:
        """What ``pipeline describe`` prints."""
        out = [f"run {self.arn}: {self.status}" + (f" ({self.failure})" if self.failure else "")]
        if self.steps_error:
            return [*out, f"  steps: not readable ({self.steps_error})"]
        for step in self.steps:
            out.append(f"  {step.get('StepName', '?'):<16} {step.get('StepStatus', '?'):<10} {_step_detail(step)}")
        out.append(self.outcome())
        return out

    def outcome(self) -> str:
        """Registered ARN, or why nothing was registered (or that the run has not decided yet)."""
        by_name = {step.get("StepName"): step for step in self.steps}
        registered = (by_name.get(REGISTER, {}).get("Metadata") or {}).get("RegisterModel", {}).get("Arn")
        if registered:
            return f"registered {registered} (PendingManualApproval: python -m launcher approve ARN --reason TEXT)"
        condition = (by_name.get(CHECK, {}).get("Metadata") or {}).get("Condition", {}).get("Outcome")
        if condition in (False, "False"):
            message = (by_name.get(MISSED, {}).get("Metadata") or {}).get("Fail", {}).get("ErrorMessage")
            return f"nothing registered: {CHECK} was False" + (f": {message}" if message else "")
        if self.status in ("Failed", "Stopped"):
            return "nothing registered: the run ended before " + CHECK
        return "nothing registered yet"


def _step_detail(step: dict[str, Any]) -> str:
    metadata = step.get("Metadata") or {}
    for kind, key in (("TrainingJob", "Arn"), ("ProcessingJob", "Arn"), ("RegisterModel", "Arn"),
                      ("Condition", "Outcome"), ("Fail", "ErrorMessage")):
        if kind in metadata and key in metadata[kind]:
            detail = f"{kind} {metadata[kind][key]}"
            return detail + (f" -- {step['FailureReason']}" if step.get("FailureReason") else "")
    return str(step.get("FailureReason", ""))


def latest_run(clients: Clients, name: str) -> str:
    """The ARN of the pipeline's latest run."""
    _existing(clients, name)
    runs = clients.sagemaker.list_pipeline_executions(PipelineName=name, SortBy="CreationTime",
                                                      SortOrder="Descending").get("PipelineExecutionSummaries", [])
    if not runs:
        raise SettingError("pipeline", name, "a pipeline that has run (python -m launcher pipeline start NAME)")
    return str(runs[0]["PipelineExecutionArn"])


def describe_run(clients: Clients, arn: str) -> RunReport:
    """A run's status, its steps (ListPipelineExecutionSteps) and its outcome."""
    described = clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    status, failure = str(described["PipelineExecutionStatus"]), described.get("FailureReason") or None
    try:
        steps: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = clients.sagemaker.list_pipeline_execution_steps(
                PipelineExecutionArn=arn, SortOrder="Ascending", **({"NextToken": token} if token else {}))
            steps.extend(page.get("PipelineExecutionSteps", []))
            token = page.get("NextToken")
            if not token:
                break
    except (ClientError, BotoCoreError) as exc:  # e.g. no sagemaker:ListPipelineExecutionSteps permission
        return RunReport(arn, status, failure, [], steps_error=(str(exc).splitlines() or ["?"])[0])
    return RunReport(arn, status, failure, steps)
