"""Multi-model endpoints: one endpoint serving every model.tar.gz under an S3 prefix, chosen per request.

A model is added by copying its archive under the prefix; SageMaker loads it on the first request whose
TargetModel names it. Archives are never overwritten: SageMaker may keep serving a cached copy of the old one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from launcher.aws import Clients
from launcher.endpoints.deploy import (
    Deployment,
    Emit,
    ServingConfig,
    create_endpoint,
    create_model,
    resolve_model_data,
    wait_for_endpoint,
)
from launcher.errors import require
from launcher.names import unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri, copy, exists
from launcher.waiting import Poller

log = logging.getLogger(__name__)

#: set in the container so its entrypoint starts TorchServe without a default model, in multi-model mode
MULTI_MODEL_ENVIRONMENT = {"SAGEMAKER_MULTI_MODEL": "true"}
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.tar\.gz")


def deploy_multi_model(clients: Clients, prefix: str, config: ServingConfig, poller: Poller | None = None,
                       emit: Emit = log.info, wait: bool = True) -> Deployment:
    """A new endpoint in MultiModel mode over the archives under ``prefix`` (which may still be empty)."""
    require(config.serverless is None and config.asynchronous is None, "multi_model", True,
            "instances: a multi-model endpoint cannot be serverless or asynchronous")
    model_data = str(S3Uri.parse(prefix, "model_prefix").as_prefix())
    name = unique_name(f"{config.name_prefix}-mme")
    multi = replace(config, extra_environment={**config.extra_environment, **MULTI_MODEL_ENVIRONMENT})
    create_model(clients, name, multi, {"ModelDataUrl": model_data, "Mode": "MultiModel"}, "deploy-multi")
    create_endpoint(clients, name, name, config, "deploy-multi")
    if wait:
        wait_for_endpoint(clients, name, poller, emit)
    return Deployment(endpoint=name, endpoint_config=name, model=name, model_data=model_data)


def _default_target(source: str, model_data: str) -> str:
    if not source.startswith("s3://"):
        return f"{source}.tar.gz"  # a training job name
    parts = S3Uri.parse(model_data).key.split("/")
    if len(parts) >= 3 and parts[-2:] == ["output", "model.tar.gz"]:  # {output}/{job}/output/model.tar.gz
        return f"{parts[-3]}.tar.gz"
    return parts[-1]


def add_model(clients: Clients, source: str, prefix: str, target: str | None = None,
              tagging: str | None = None) -> str:
    """Copy a model (training job name or model.tar.gz URI) under ``prefix``; return its TargetModel name.

    The default target is ``{training job or archive folder}.tar.gz``; the copy is tagged with ``tagging``
    (default: ``add-model``'s tags without user tags).
    """
    base = S3Uri.parse(prefix, "model_prefix")
    model_data = resolve_model_data(clients, source)
    target = target or _default_target(source, model_data)
    require(bool(_TARGET.fullmatch(target)), "target_model", target, "a file name ending with .tar.gz")
    archive = S3Uri.parse(model_data)  # resolve_model_data found it
    destination = base.join(target)
    require(not exists(clients.s3, destination), "target_model", target,
            f"a name not already under {prefix} (SageMaker may serve a cached copy of a replaced archive)")
    copy(clients.s3, archive, destination,
         Placement().object_tagging("add-model") if tagging is None else tagging)
    return target

