"""The launcher tier's accounts, moto in this process (names and constants: tests/helpers/launcher_account.py).

- ``empty_account``: nothing at all, not even the bucket;
- ``account``: the project bucket only, once in-process and once behind a moto server (each test runs on both);
- ``model_account``: the bucket and a stand-in archive at MODEL_DATA, moto as it is (the Python API's tests
  play SageMaker's part themselves);
- ``simulated_account``: the same, with SageMaker's behaviour simulated (jobs run, endpoints answer, transforms
  stop).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import requests

from launcher.aws import AwsSettings, Clients
from tests.helpers.launcher_account import REGION, create_bucket, stand_in_model
from tests.helpers.moto_sagemaker import (
    accept_transform_stops,
    in_process_moto_server,
    offline_account,
    simulate_sagemaker,
)


@pytest.fixture
def empty_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        yield clients


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    with in_process_moto_server() as url:
        yield url


@pytest.fixture(params=["in-process", "moto-server"])
def account(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    if request.param == "in-process":
        with offline_account(monkeypatch, tmp_path, REGION) as clients:
            create_bucket(clients)
            yield clients
        return
    url = request.getfixturevalue("moto_server")
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    clients = Clients(AwsSettings(region=REGION))
    create_bucket(clients)
    yield clients


@pytest.fixture
def model_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        stand_in_model(clients)
        yield clients


@pytest.fixture
def simulated_account(model_account: Clients) -> Clients:
    simulate_sagemaker(REGION)
    accept_transform_stops()
    return model_account
