"""Update a live endpoint in place: a new model and endpoint config, then UpdateEndpoint (no downtime).

SageMaker keeps serving the old configuration until the new one is InService. When the update fails, it goes on
serving the old one; the launcher then deletes the model and config it made for the update and says so. When it
succeeds, the old config and its models are deleted (a model the new config still uses is kept).
"""
from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code
from launcher.endpoints.cleanup import delete_model, endpoint_parts, try_delete
from launcher.endpoints.deploy import (
    Deployment,
    Emit,
    ServingConfig,
    checked_model_data,
    create_endpoint_config,
    create_model,
)
from launcher.errors import JobFailed, LauncherError, SettingError, WaitTimeout
from launcher.names import unique_name
from launcher.waiting import Poller

log = logging.getLogger(__name__)

#: statuses during which the endpoint is still moving to its next configuration
_MOVING = ("Updating", "SystemUpdating", "RollingBack", "Creating")


class UpdateFailed(LauncherError):
    """The endpoint did not take the new configuration; the message says what serves now."""


def current_config(clients: Clients, endpoint: str) -> dict[str, Any]:
    """The endpoint's description; SettingError when it does not exist or cannot be updated now."""
    try:
        described: dict[str, Any] = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if error_code(exc) in ("ValidationException", "ResourceNotFound"):
            raise SettingError("endpoint", endpoint, "an existing endpoint to update (deploy without --endpoint "
                               "to create one)") from None
        raise
    if described["EndpointStatus"] != "InService":
        raise SettingError("endpoint", endpoint, f"an InService endpoint (it is {described['EndpointStatus']}; "
                           "wait for it, or delete and deploy again)")
    return described


def _wait_for_update(clients: Clients, endpoint: str, new_config: str, poller: Poller, emit: Emit) -> None:
    seen: list[str] = []

    def probe() -> dict[str, Any] | None:
        described = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
        status = described["EndpointStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
            emit(f"endpoint {endpoint}: {status}")
        return None if status in _MOVING else described

    described = poller.until(probe, f"update of endpoint {endpoint}")
    if described["EndpointStatus"] != "InService" or described["EndpointConfigName"] != new_config:
        raise JobFailed("update of endpoint", endpoint, described["EndpointStatus"],
                        described.get("FailureReason"))


def update_endpoint(clients: Clients, endpoint: str, source: str, config: ServingConfig,
                    poller: Poller | None = None, emit: Emit = log.info) -> Deployment:
    """Serve ``source`` on the existing ``endpoint``; delete the old config and models once the new one serves."""
    old_config = current_config(clients, endpoint)["EndpointConfigName"]
    _, old_models = endpoint_parts(clients, endpoint)
    model_data = checked_model_data(clients, source, config)
    name = unique_name(f"{config.name_prefix}-ep")
    create_model(clients, name, config, {"ModelDataUrl": model_data, "Mode": "SingleModel"})
    try:
        create_endpoint_config(clients, name, name, config)
        clients.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=name)
        emit(f"updating endpoint {endpoint}: {old_config} -> {name}")
        _wait_for_update(clients, endpoint, name, poller or Poller(interval_s=15.0, timeout_s=3600.0), emit)
    except WaitTimeout:
        raise  # the update may still finish: its model and config must stay
    except (JobFailed, ClientError) as exc:
        removed = [try_delete(f"endpoint config {name}",
                              lambda: clients.sagemaker.delete_endpoint_config(EndpointConfigName=name)),
                   delete_model(clients, name)]
        raise UpdateFailed(f"updating endpoint {endpoint} failed ({exc}); it still serves {old_config} with "
                           f"model {', '.join(old_models)}; " + "; ".join(removed)) from None
    emit(try_delete(f"endpoint config {old_config}",
                    lambda: clients.sagemaker.delete_endpoint_config(EndpointConfigName=old_config)))
    for model in old_models:
        if model != name:
            emit(delete_model(clients, model))
    return Deployment(endpoint=endpoint, endpoint_config=name, model=name, model_data=model_data)
