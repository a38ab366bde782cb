"""The Model Registry: a model package group per model, a version per registered archive, approval by a person,
and a SageMaker Model Card made from the checkpoint's own model card.

``register`` reads ``task_spec.json`` and ``metrics.json`` (from a local checkpoint, or out of the model.tar.gz),
creates the group when it is missing, uploads ``metrics.json`` beside the archive (tagged like every object the
launcher writes), creates the version (``PendingManualApproval``) and then a standalone Model Card. The requests
are pure functions: ``launcher.pipeline`` builds its RegisterModel step from ``package_request`` itself.

A version carries two inference specifications when a GPU image is configured: the CPU one (what real-time CPU
instances, batch transform on CPU and serverless endpoints run) and ``gpu``, for ml.g*/ml.p* instances.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from launcher.aws import Clients, missing_anyhow, resource_exists
from launcher.checks import check_image, check_instances
from launcher.endpoints.deploy import check_model_data
from launcher.errors import SettingError, require
from launcher.names import NAME_PATTERN
from launcher.placement import Placement
from launcher.s3 import ARCHIVE_READ_ERRORS, S3Uri, archive_members, exists
from tasks.kinds import TASKS, task_kind
from tasks.serving_contract import JSON, JSONLINES
from tasks.spec import TASK_SPEC_FILE

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
CONTENT_TYPES = (JSON, JSONLINES)
#: image kind -> (real-time instance types, transform instance types) a version lists. The CPU image is also what
#: a serverless endpoint runs (serverless has no instance type to list)
INSTANCE_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cpu": (("ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.c5.2xlarge"),
            ("ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.2xlarge")),
    "gpu": (("ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge"), ("ml.g4dn.xlarge", "ml.g5.xlarge")),
}
GPU_SPECIFICATION = "gpu"
_VERSION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/([a-zA-Z0-9-]{1,63})/(\d+)")
MAX_TEXT = 1024  # ModelPackageDescription, ApprovalDescription and most model card strings
_CARD_TEXT = 2048  # the model card's intended-use and caveat strings


@dataclass(frozen=True)
class ModelFacts:
    """What a checkpoint says about itself: its task spec, its metrics (with ``info``) and where they came from."""

    spec: dict[str, Any]
    metrics: dict[str, Any]
    source: str

    def __post_init__(self) -> None:
        require(self.spec.get("task") in TASKS, "checkpoint", self.source,
                f"a {TASK_SPEC_FILE} naming one of the tasks {sorted(TASKS)}")
        require(isinstance(self.metrics.get("test"), dict) and isinstance(self.metrics.get("info"), dict),
                "checkpoint", self.source, f"a training run's {METRICS_FILE} (with test scores and info)")

    @property
    def task(self) -> str:
        """The task name."""
        return str(self.spec["task"])

    @property
    def info(self) -> dict[str, Any]:
        """metrics.json's ``info``: base model, hyperparameters, data sizes, timings."""
        return dict(self.metrics["info"])

    def scores(self, split: str) -> dict[str, float]:
        """The scalar scores of one split (tables such as the confusion matrix left out)."""
        values = self.metrics.get(split) or {}
        return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def read_checkpoint(folder: str | Path) -> ModelFacts:
    """The facts of a local checkpoint folder (training's output directory)."""
    path = Path(folder)
    texts = {}
    for name in (TASK_SPEC_FILE, METRICS_FILE):
        require((path / name).is_file(), "checkpoint", str(path), f"a checkpoint folder holding {name}")
        texts[name] = (path / name).read_text(encoding="utf-8")
    return _facts(texts, str(path))


def read_archive(s3: Any, model_data: str) -> ModelFacts:
    """The facts inside a model.tar.gz on S3 (a training job's output or a ``make archive`` archive), read as a
    stream: only the two small files are kept."""
    location = check_model_data(model_data)
    wanted = {TASK_SPEC_FILE, METRICS_FILE}
    try:
        texts = {name: data.decode("utf-8") for name, data in archive_members(s3, location, wanted).items()}
    except ARCHIVE_READ_ERRORS as exc:
        raise SettingError("model_data", model_data, f"a readable model.tar.gz ({exc})") from None
    missing = sorted(wanted - set(texts))
    require(not missing, "model_data", model_data, f"an archive holding {' and '.join(missing)} (a training job's "
            "output has both; or give --checkpoint FOLDER)")
    return _facts(texts, model_data)


def _facts(texts: dict[str, str], source: str) -> ModelFacts:
    try:
        spec, metrics = json.loads(texts[TASK_SPEC_FILE]), json.loads(texts[METRICS_FILE])
    except ValueError as exc:
        raise SettingError("checkpoint", source, f"valid JSON in {TASK_SPEC_FILE} and {METRICS_FILE} ({exc})") from None
    require(isinstance(spec, dict) and isinstance(metrics, dict), "checkpoint", source, "JSON objects")
    return ModelFacts(spec, metrics, source)


@dataclass(frozen=True)
class Version:
    """What ``register`` made."""

    group: str
    arn: str
    card: str
    metrics_uri: str
    group_created: bool

    @property
    def number(self) -> int:
        """The version number within its group."""
        return int(self.arn.rsplit("/", 1)[1])


def check_group(name: str) -> str:
    """A model package group name SageMaker takes."""
    require(isinstance(name, str) and bool(NAME_PATTERN.fullmatch(name)), "group", name,
            "a model package group name: letters, digits and hyphens, at most 63, starting with a letter or digit")
    return name


def check_version_arn(arn: str) -> tuple[str, int]:
    """(group, version) of a model package version ARN, or SettingError."""
    match = _VERSION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None:
        raise SettingError("version", arn, "a model package version ARN such as arn:aws:sagemaker:eu-west-1:"
                           "123456789012:model-package/my-group/1 (python -m launcher list --group NAME shows them)")
    return match.group(1), int(match.group(2))


def check_text(value: str | None, field: str, required: bool = False) -> None:
    """A description or reason: at most 1024 characters (and not blank when required)."""
    require(not required or bool(value and value.strip()), field, value, "a non-empty text")
    require(value is None or len(value) <= MAX_TEXT, field, f"{len(value or '')} characters",
            f"at most {MAX_TEXT} characters")


def metrics_location(model_data: str) -> S3Uri:
    """Where ``metrics.json`` goes: beside the archive (``.../model.tar.gz`` -> ``.../metrics.json``)."""
    archive = check_model_data(model_data)
    folder = archive.key.rsplit("/", 1)[0] if "/" in archive.key else ""
    return S3Uri(archive.bucket, f"{folder}/{METRICS_FILE}" if folder else METRICS_FILE)


def _specification(image: str, model_data: Any, kind: str) -> dict[str, Any]:
    realtime, transform = INSTANCE_TYPES[kind]
    return {"Containers": [{"Image": image, "ModelDataUrl": model_data}],
            "SupportedContentTypes": list(CONTENT_TYPES), "SupportedResponseMIMETypes": list(CONTENT_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": list(realtime),
            "SupportedTransformInstanceTypes": list(transform)}


def check_images(cpu_image: str, gpu_image: str | None) -> None:
    """The images of a version, and the instance types listed for them (SageMaker's own lists, botocore's)."""
    for image in filter(None, (cpu_image, gpu_image)):
        check_image(image)
    for kind in ("cpu", "gpu") if gpu_image else ("cpu",):
        realtime, transform = INSTANCE_TYPES[kind]
        for instance in realtime:
            check_instances(instance, 1, "hosting")
        for instance in transform:
            check_instances(instance, 1, "transform")


def package_request(group: str, task: str, model_data: Any, metrics_uri: Any, cpu_image: str, gpu_image: str | None,
                    placement: Placement, description: str | None = None,
                    facts: ModelFacts | None = None) -> dict[str, Any]:
    """The CreateModelPackage arguments of one version (pure). ``model_data`` and ``metrics_uri`` may be pipeline
    expressions (``{"Get": ...}``): ``launcher.pipeline`` builds its RegisterModel step from this, before any
    model exists, so without ``facts`` (the checkpoint's spec and metrics) the version has no model card."""
    kind = task_kind(task)
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description or f"{task} model"
                                                  + (f" from {facts.info.get('base_model')}" if facts else ""),
        "InferenceSpecification": _specification(cpu_image, model_data, "cpu"),
        "ModelApprovalStatus": PENDING,
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": JSON, "S3Uri": metrics_uri}}},
        "Domain": "NATURAL_LANGUAGE_PROCESSING",
        # SageMaker's task names: a label per record is CLASSIFICATION; NER (a label per word) has no name there
        "Task": "REGRESSION" if not kind.has_labels else "CLASSIFICATION" if kind.head == "sequence" else "OTHER",
        "CustomerMetadataProperties": _metadata(task, facts),
        "Tags": placement.tag_list("register"),
    }
    if facts is not None:
        request["ModelCard"] = {"ModelCardContent": json.dumps(model_card_content(facts, model_data)),
                                "ModelCardStatus": "Draft"}
    if gpu_image:
        request["AdditionalInferenceSpecifications"] = [
            {"Name": GPU_SPECIFICATION, "Description": "the GPU image, for ml.g* and ml.p* instances",
             **_specification(gpu_image, model_data, "gpu")}]
    return request


def _metadata(task: str, facts: ModelFacts | None) -> dict[str, str]:
    """A few facts shown beside the version in SageMaker Studio (values at most 256 characters)."""
    values = {"smtx:task": task}
    if facts is not None:
        kind = task_kind(task)
        primary = facts.scores("test").get(kind.primary_metric)
        values.update({"smtx:base-model": str(facts.info.get("base_model", "")),
                       "smtx:labels": str(len(facts.spec.get("labels") or [])),
                       f"smtx:test-{kind.primary_metric}": "" if primary is None else f"{primary:.6g}"})
    return {key: value[:256] for key, value in values.items() if value}


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_card_content(facts: ModelFacts, model_data: Any) -> dict[str, Any]:
    """A SageMaker Model Card's content (its JSON schema's field names) from our model card's facts: the task,
    the labels, the data sizes, the metrics and the intended use."""
    kind, spec, info = task_kind(facts.task), facts.spec, facts.info
    labels = [str(label) for label in spec.get("labels") or []]
    sizes = info.get("data_sizes") or {}
    size_text = ", ".join(f"{sizes.get(split, '?')} {split}" for split in ("train", "dev", "test"))
    label_text = ", ".join(labels) if labels else "none (regression: one number per record)"
    base = str(info.get("base_model", "?"))
    content: dict[str, Any] = {
        "model_overview": {
            "model_description": _cut(f"{facts.task} model fine-tuned from {base} ({spec.get('model_type', '?')} "
                                      f"architecture); labels: {label_text}"),
            "model_creator": "smtx-launcher",
            "algorithm_type": "Transformer encoder, fine-tuned",
            "problem_type": facts.task,
        },
        "intended_uses": {
            "purpose_of_model": _cut(f"{facts.task}: {kind.pipeline_tag} over records with the fields "
                                     f"{', '.join(kind.inputs)}; answers look like {kind.example_answer}", _CARD_TEXT),
            "intended_uses": _cut(f"Send {JSON} ({{\"data\": [records]}}) or {JSONLINES} (one record per line) to "
                                  "the endpoint or a batch transform; one answer per record, in order.", _CARD_TEXT),
            "factors_affecting_model_efficiency": _cut(
                f"Texts longer than {spec.get('max_seq_length', '?')} tokens are read in overlapping windows "
                f"(stride {spec.get('stride', '?')}); the model knows only the labels it was trained on.", _CARD_TEXT),
            "risk_rating": "Unknown",
        },
        "training_details": {
            "objective_function": {"function": "Maximize" if kind.greater_is_better else "Minimize",
                                   "facet": kind.primary_metric, "condition": "on the dev split"},
            "training_observations": _cut(f"data: {size_text} records; base model {base}"),
            "training_job_details": {
                "hyper_parameters": [{"name": str(k)[:255], "value": str(v)[:255]}
                                     for k, v in (info.get("hyperparameters") or {}).items()],
                "training_metrics": [{"name": f"dev_{k}", "value": v} for k, v in facts.scores("dev").items()],
            },
        },
        "evaluation_details": [{
            "name": "test split",
            "evaluation_observation": _cut("Scored on the held-out test split with the decoding the endpoint runs "
                                           "(NER per word)."),
            "metric_groups": [{"name": "test", "metric_data": [
                {"name": name, "type": "number", "value": value} for name, value in facts.scores("test").items()]}],
        }],
        "additional_information": {
            "custom_details": {"labels": _cut(label_text), "data_sizes": size_text, "task": facts.task},
        },
    }
    if isinstance(model_data, str):  # a pipeline's register step knows the archive only when it runs
        content["model_overview"]["model_artifact"] = [model_data]
    return content


def card_name(version_arn: str) -> str:
    """The Model Card of a version: ``{group}-v{number}``, cut to SageMaker's 63 characters."""
    group, number = check_version_arn(version_arn)
    suffix = f"-v{number}"
    return group[: 63 - len(suffix)].rstrip("-") + suffix


def group_exists(clients: Clients, group: str) -> bool:
    """Whether the model package group exists."""
    return resource_exists(clients.sagemaker.describe_model_package_group, missing_anyhow, ModelPackageGroupName=group)


def ensure_group(clients: Clients, group: str, placement: Placement) -> bool:
    """Create the group when it is missing; True when it was created."""
    if group_exists(clients, group):
        return False
    clients.sagemaker.create_model_package_group(
        ModelPackageGroupName=group, ModelPackageGroupDescription="versions registered by the smtx launcher",
        Tags=placement.tag_list("register"))
    log.info("created model package group %s", group)
    return True


def register(clients: Clients, group: str, model_data: str, facts: ModelFacts, cpu_image: str,
             gpu_image: str | None, description: str | None, placement: Placement) -> Version:
    """Register ``model_data`` as a new version of ``group`` (every input checked by the caller). All or nothing:
    when a step fails, what the earlier steps created (the version, the metrics object, a new group) is removed
    again before the error goes on, so a failed register leaves nothing behind in the account."""
    tagging = placement.object_tagging("register")
    metrics = metrics_location(model_data)
    undo: list[Callable[[], object]] = []
    try:
        created = ensure_group(clients, group, placement)
        if created:
            undo.append(lambda: clients.sagemaker.delete_model_package_group(ModelPackageGroupName=group))
        if not exists(clients.s3, metrics):  # a version of the same archive may already point at it
            undo.append(lambda: clients.s3.delete_object(Bucket=metrics.bucket, Key=metrics.key))
        clients.s3.put_object(Bucket=metrics.bucket, Key=metrics.key,
                              Body=json.dumps(facts.metrics, indent=2).encode(), ContentType=JSON, Tagging=tagging)
        request = package_request(group, facts.task, model_data, str(metrics), cpu_image, gpu_image, placement,
                                  description, facts)
        arn = str(clients.sagemaker.create_model_package(**request)["ModelPackageArn"])
        undo.append(lambda: clients.sagemaker.delete_model_package(ModelPackageName=arn))
        name = card_name(arn)
        card = model_card_content(facts, model_data)  # the version's own card, and the ARN that links the two
        card["additional_information"]["custom_details"]["model_package_arn"] = arn
        clients.sagemaker.create_model_card(ModelCardName=name, Content=json.dumps(card), ModelCardStatus="Draft",
                                            Tags=placement.tag_list("register"))
    except BaseException:
        for step in reversed(undo):
            try:
                step()
            except (ClientError, BotoCoreError) as exc:  # the first error is the one to report
                log.warning("could not remove what register created: %s", exc)
        raise
    log.info("registered %s (model card %s)", arn, name)
    return Version(group=group, arn=arn, card=name, metrics_uri=str(metrics), group_created=created)


def describe_version(clients: Clients, arn: str) -> dict[str, Any]:
    """A version's description; SettingError (exit 2) when there is no such version."""
    check_version_arn(arn)
    try:
        return dict(clients.sagemaker.describe_model_package(ModelPackageName=arn))
    except ClientError as exc:
        if missing_anyhow(exc):
            raise SettingError("version", arn, "an existing model package version (python -m launcher list "
                                               "--group NAME shows them)") from None
        raise


def set_approval(clients: Clients, arn: str, status: str, reason: str) -> str:
    """Approve or reject a version with a reason (UpdateModelPackage); the status it had before."""
    check_text(reason, "reason", required=True)
    before = str(describe_version(clients, arn).get("ModelApprovalStatus", PENDING))
    clients.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status,
                                           ApprovalDescription=reason)
    log.info("%s: %s -> %s", arn, before, status)
    return before


def list_groups(clients: Clients) -> list[dict[str, Any]]:
    """Every model package group, oldest first."""
    groups: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = clients.sagemaker.list_model_package_groups(
            SortBy="CreationTime", SortOrder="Ascending", MaxResults=100, **({"NextToken": token} if token else {}))
        groups.extend(page.get("ModelPackageGroupSummaryList", []))
        token = page.get("NextToken")
        if not token:
            return groups


def list_versions(clients: Clients, group: str) -> list[dict[str, Any]]:
    """The versions of ``group``, by version number."""
    versions: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = clients.sagemaker.list_model_packages(
            ModelPackageGroupName=group, ModelPackageType="Versioned", MaxResults=100,
            **({"NextToken": token} if token else {}))
        versions.extend(page.get("ModelPackageSummaryList", []))
        token = page.get("NextToken")
        if not token:
            return sorted(versions, key=lambda v: int(v.get("ModelPackageVersion") or 0))


def deployable(described: dict[str, Any], gpu: bool) -> tuple[str, str]:
    """(image, model data) of a version for a CPU (or serverless) or a GPU deployment."""
    if gpu:
        extra = {s.get("Name"): s for s in described.get("AdditionalInferenceSpecifications") or []}
        require(GPU_SPECIFICATION in extra, "instance_type", "a GPU instance",
                "a CPU instance type or --serverless: this version has no GPU image (register it with --gpu-image)")
        container = extra[GPU_SPECIFICATION]["Containers"][0]
    else:
        container = described["InferenceSpecification"]["Containers"][0]
    return str(container["Image"]), str(container["ModelDataUrl"])
