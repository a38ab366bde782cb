"""Every AWS client the launcher uses is built here, from one session and one set of settings.

Nothing in the code chooses a region, an account or an endpoint: they come from flags or from the usual AWS
environment (``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, credentials, ``AWS_ENDPOINT_URL`` and
its per-service variants, which botocore honours itself). ``AWS_ENDPOINT_URL`` is what points the launcher
at a moto server in tests and in the walkthrough notebook.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from launcher.errors import require

log = logging.getLogger(__name__)

#: log group SageMaker writes training job output to; one stream per instance, named ``{job}/algo-{n}-{time}``
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
#: transform jobs: one stream per instance, ``{job}/{instance id}-{time}`` (and ``.../data-log``)
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
#: endpoints: a group per endpoint, one stream per instance, ``{variant}/{instance id}``
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints/{endpoint}"
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="smtx-launcher")


@dataclass(frozen=True)
class AwsSettings:
    """Where to talk to AWS. None means "let boto3 resolve it from the environment and config files"."""

    region: str | None = None
    profile: str | None = None
    #: overrides AWS_ENDPOINT_URL for every service (e.g. a moto server); None keeps botocore's resolution
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            require(self.endpoint_url.startswith(("http://", "https://")), "endpoint_url", self.endpoint_url,
                    "an http:// or https:// URL")


class Clients:
    """Lazily built boto3 clients sharing one session: ``sagemaker``, ``runtime``, ``s3``, ``logs``,
    ``autoscaling`` and ``cloudwatch``."""

    def __init__(self, settings: AwsSettings | None = None) -> None:
        self.settings = settings or AwsSettings()
        # botocore reads AWS_DEFAULT_REGION but not AWS_REGION (which the AWS CLI v2 and the other SDKs read
        # first), so AWS_REGION is passed on here; the config file still comes after both
        region = self.settings.region or os.environ.get("AWS_REGION") or None
        self.session = boto3.Session(region_name=region, profile_name=self.settings.profile)
        require(bool(self.session.region_name), "region", self.session.region_name,
                "a region from --region, AWS_REGION, AWS_DEFAULT_REGION or the AWS config file")

    @property
    def region(self) -> str:
        """The region every client talks to."""
        return str(self.session.region_name)

    def _client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"config": _BOTO_CONFIG}
        if self.settings.endpoint_url:
            kwargs["endpoint_url"] = self.settings.endpoint_url
        client = self.session.client(service, **kwargs)
        log.debug("%s client -> %s", service, client.meta.endpoint_url)
        return client

    @cached_property
    def sagemaker(self) -> Any:
        """The SageMaker control plane (jobs, models, endpoints)."""
        return self._client("sagemaker")

    @cached_property
    def runtime(self) -> Any:
        """SageMaker runtime (invoke_endpoint)."""
        return self._client("sagemaker-runtime")

    @cached_property
    def s3(self) -> Any:
        """S3, for data, model artifacts and transform input/output."""
        return self._client("s3")

    @cached_property
    def logs(self) -> Any:
        """CloudWatch Logs, to follow a training job's, a transform job's or an endpoint's output."""
        return self._client("logs")

    @cached_property
    def autoscaling(self) -> Any:
        """Application Auto Scaling, for an endpoint variant's instance count."""
        return self._client("application-autoscaling")

    @cached_property
    def cloudwatch(self) -> Any:
        """CloudWatch alarms (an async endpoint's scale-out from zero)."""
        return self._client("cloudwatch")


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def missing_anyhow(exc: Exception) -> bool:
    """Whether SageMaker answered that the named resource does not exist, for the APIs whose wording differs
    ("... does not exist" for model package groups and pipelines): any ValidationException or not-found code."""
    return error_code(exc) in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException")


def resource_exists(describe: Callable[..., object], missing: Callable[[Exception], bool] | None = None,
                    **name: str) -> bool:
    """Whether the resource that ``describe(**name)`` describes exists: False where SageMaker answers that it does
    not (``missing``, by default ``not_found``), any other error raised."""
    try:
        describe(**name)
    except ClientError as exc:
        if (missing or not_found)(exc):
            return False
        raise
    return True


def not_found(exc: Exception) -> bool:
    """Whether SageMaker answered that the named resource does not exist: a ValidationException saying "Could not
    find ..." (endpoints, models, configs, moto's jobs) or "Requested resource not found" (jobs)."""
    response = getattr(exc, "response", None) or {}
    message = str(response.get("Error", {}).get("Message", "")).lower()
    return error_code(exc) in ("ValidationException", "ResourceNotFound") and ("find" in message
                                                                               or "not found" in message)
