"""Start and stop SageMaker training jobs (following one is ``launcher.jobs.follow``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from launcher.aws import Clients, not_found
from launcher.checks import DEFAULT_INSTANCE, check_image, check_instances, check_role
from launcher.errors import SettingError, require
from launcher.images import check_gpu_image
from launcher.jobs.hyperparameters import Hyperparameters
from launcher.jobs.metrics import metric_definitions
from launcher.names import unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri

log = logging.getLogger(__name__)

#: the input channel; the container finds train.csv, dev.csv and test.csv in /opt/ml/input/data/training
DATA_CHANNEL = "training"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
MAX_RUNTIME_S = 28 * 24 * 3600  # SageMaker's upper bound for MaxRuntimeInSeconds and MaxWaitTimeInSeconds
_EXISTING_JOB = "the name of an existing training job (python -m launcher list shows them)"


@dataclass(frozen=True)
class TrainingConfig:
    """One training job, validated once; errors name the field, the value and what was expected."""

    image_uri: str
    role_arn: str
    #: S3 prefix holding train.csv, dev.csv and test.csv (see launcher.jobs.data.upload_dataset)
    data_uri: str
    #: S3 prefix under which SageMaker writes ``{job}/output/model.tar.gz``
    output_uri: str
    hyperparameters: Hyperparameters
    instance_type: str = DEFAULT_INSTANCE
    instance_count: int = 1
    volume_gb: int = 30
    max_runtime_s: int = 24 * 3600
    #: managed spot training: cheaper, may be interrupted; resumes from checkpoint_uri
    spot: bool = False
    #: spot only: how long to wait for capacity plus run; None = twice max_runtime_s (capped)
    max_wait_s: int | None = None
    #: S3 prefix for checkpoints; each job gets its own folder ``{checkpoint_uri}/{job name}/``
    checkpoint_uri: str | None = None
    name_prefix: str = "smtx"
    #: tags, VPC, KMS key (volume and model output), network isolation
    placement: Placement = field(default_factory=Placement)

    def __post_init__(self) -> None:
        check_image(self.image_uri)
        check_role(self.role_arn)
        S3Uri.parse(self.data_uri, "data_uri")
        S3Uri.parse(self.output_uri, "output_uri")
        check_instances(self.instance_type, self.instance_count, "training")
        check_gpu_image(self.image_uri, self.instance_type)
        require(1 <= self.volume_gb <= 16384, "volume_gb", self.volume_gb, "an integer in [1, 16384]")
        require(1 <= self.max_runtime_s <= MAX_RUNTIME_S, "max_runtime_s", self.max_runtime_s,
                f"seconds in [1, {MAX_RUNTIME_S}]")
        require(self.spot or self.max_wait_s is None, "max_wait_s", self.max_wait_s,
                "no value unless spot is on (it bounds the wait for spot capacity)")
        if self.spot:
            require(self.checkpoint_uri is not None, "checkpoint_uri", self.checkpoint_uri,
                    "an s3:// URI when spot is on, so an interrupted job resumes instead of restarting")
            require(self.max_runtime_s <= self.spot_max_wait_s <= MAX_RUNTIME_S, "max_wait_s", self.max_wait_s,
                    f"seconds in [max_runtime_s ({self.max_runtime_s}), {MAX_RUNTIME_S}]")
        if self.checkpoint_uri is not None:
            S3Uri.parse(self.checkpoint_uri, "checkpoint_uri")

    @property
    def spot_max_wait_s(self) -> int:
        """MaxWaitTimeInSeconds for spot jobs."""
        return self.max_wait_s if self.max_wait_s is not None else min(2 * self.max_runtime_s, MAX_RUNTIME_S)


def training_job_request(name: str, config: TrainingConfig, command: str = "train") -> dict[str, Any]:
    """The CreateTrainingJob arguments for ``config`` (pure: tests assert on it, start_training_job sends it;
    ``launcher.tuning`` makes a tuning job's training definition from it, tagged with its ``command``)."""
    task = config.hyperparameters.task_name
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": config.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": config.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(task),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": config.hyperparameters.as_sagemaker(),
        "InputDataConfig": [{
            "ChannelName": DATA_CHANNEL,
            "ContentType": "text/tab-separated-values",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": config.data_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
        }],
        "OutputDataConfig": {"S3OutputPath": config.output_uri},
        "ResourceConfig": {"InstanceType": config.instance_type, "InstanceCount": config.instance_count,
                           "VolumeSizeInGB": config.volume_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_s},
        "EnableManagedSpotTraining": config.spot,
        "Tags": config.placement.tag_list(command) + [{"Key": "smtx:task", "Value": task}],
        "EnableNetworkIsolation": config.placement.network_isolation,
    }
    _place(request, config)
    if config.spot:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = config.spot_max_wait_s
    if config.checkpoint_uri is not None:
        checkpoints = S3Uri.parse(config.checkpoint_uri).join(name).as_prefix()
        request["CheckpointConfig"] = {"S3Uri": str(checkpoints), "LocalPath": CHECKPOINT_LOCAL_PATH}
    return request


def _place(request: dict[str, Any], config: TrainingConfig) -> None:
    """VPC and KMS keys, where asked for (a volume key only where the instance has no local NVMe storage)."""
    vpc = config.placement.vpc_config()
    if vpc:
        request["VpcConfig"] = vpc
    if config.placement.kms_key:
        request["OutputDataConfig"]["KmsKeyId"] = config.placement.kms_key
    volume_key = config.placement.volume_key(config.instance_type)
    if volume_key:
        request["ResourceConfig"]["VolumeKmsKeyId"] = volume_key


def start_training_job(clients: Clients, config: TrainingConfig) -> str:
    """Create a training job under a new unique name and return the name."""
    name = unique_name(f"{config.name_prefix}-{config.hyperparameters.task_name}")
    clients.sagemaker.create_training_job(**training_job_request(name, config))
    log.info("started training job %s", name)
    return name


def describe_training_job(clients: Clients, name: str) -> dict[str, Any]:
    """The job's description; SettingError (bad input, exit 2) when no training job has that name."""
    try:
        return dict(clients.sagemaker.describe_training_job(TrainingJobName=name))
    except ClientError as exc:
        if not_found(exc):
            raise SettingError("training_job", name, _EXISTING_JOB) from None
        raise


def stop_training_job(clients: Clients, name: str) -> None:
    """Ask SageMaker to stop a running job (it ends Stopped; a spot job keeps its last checkpoint)."""
    try:
        clients.sagemaker.stop_training_job(TrainingJobName=name)
    except ClientError as exc:
        if not_found(exc):  # an unknown name is the user's mistake, not an AWS failure
            raise SettingError("training_job", name, _EXISTING_JOB) from None
        raise
    log.info("asked training job %s to stop", name)


def model_artifact(clients: Clients, job_name: str) -> str:
    """The model.tar.gz URI of a Completed training job."""
    job = describe_training_job(clients, job_name)
    require(job["TrainingJobStatus"] == "Completed", "training_job", job_name,
            f"a Completed training job (it is {job['TrainingJobStatus']})")
    return str(job["ModelArtifacts"]["S3ModelArtifacts"])
