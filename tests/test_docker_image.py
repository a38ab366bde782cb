"""Build the SageMaker image with docker/build.sh and check what SageMaker and TorchServe rely on.

Starts a Docker engine through docker/dockerd.sh when none answers and stops it afterwards; skips only where
no engine can be started at all (no docker.io installed, or not root). Containers run with ``--network none``:
the image must hold everything it needs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "docker"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
IMAGE = os.environ.get("SMTX_TEST_IMAGE", "smtx:cpu")
#: a cold build (debootstrap + apt + the whole pip stack) takes about 5 minutes on 2 cores
BUILD_TIMEOUT_S = 45 * 60
NO_ENGINE = 2  # docker/dockerd.sh start: "no engine can be started here"


def _torch_pin() -> str:
    match = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match, "requirements.txt pins no torch==X"
    return match.group(1)


def _dockerd(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DOCKER_DIR / "dockerd.sh"), command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER": DOCKER},
    )


def _run_in_image(image: str, entrypoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, "run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A running engine; one started here is stopped again at the end of the session."""
    if _dockerd("status").returncode == 0:
        yield
        return
    started = _dockerd("start")
    if started.returncode == NO_ENGINE:
        pytest.skip(f"no Docker engine can be started here: {started.stderr.strip()}")
    assert started.returncode == 0, f"docker/dockerd.sh start failed:\n{started.stderr}"
    try:
        yield
    finally:
        _dockerd("stop")


@pytest.fixture(scope="session")
def image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CPU image, built (or found in BuildKit's cache) by docker/build.sh."""
    log = tmp_path_factory.mktemp("docker-build") / "build.log"
    with log.open("w") as out:
        result = subprocess.run(
            [str(DOCKER_DIR / "build.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            env={**os.environ, "IMAGE": IMAGE, "TORCH_VARIANT": "cpu", "PYTHON": sys.executable, "DOCKER": DOCKER},
        )
    tail = "\n".join(log.read_text().splitlines()[-60:])
    assert result.returncode == 0, f"docker/build.sh failed (full log: {log}):\n{tail}"
    return IMAGE


@pytest.fixture(scope="session")
def config(image: str) -> dict:
    """``docker image inspect``'s Config section."""
    result = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]["Config"]


def test_stack_imports_offline_with_cpu_torch(image: str) -> None:
    result = _run_in_image(
        image, "python3", "-c", "import torch, transformers, ts, onnxruntime, tasks; print(torch.__version__)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{_torch_pin()}+cpu"


def test_java_17_for_the_torchserve_frontend(image: str) -> None:
    result = _run_in_image(image, "java", "-version")
    assert result.returncode == 0, result.stderr
    assert re.search(r'version "17\.', result.stderr), result.stderr


def test_exec_form_entrypoint_and_no_inherited_cmd(config: dict) -> None:
    assert config["Entrypoint"] == ["python3", "-m", "entrypoints"]
    # The base image's CMD ["bash"] must not survive: `docker run IMAGE` would become `entrypoints bash`.
    assert not config.get("Cmd")


def test_sagemaker_labels_and_port(config: dict) -> None:
    labels = config.get("Labels") or {}
    assert labels.get("com.amazonaws.sagemaker.capabilities.multi-models") == "true"
    assert labels.get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") == "true"
    assert "8080/tcp" in (config.get("ExposedPorts") or {})


def test_environment_is_offline_for_the_hub_only(config: dict) -> None:
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env.get("HF_HUB_OFFLINE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    # Training may be given hub ids where a network exists; that is the caller's HF_HUB_OFFLINE=0 to set.
    assert "TRANSFORMERS_OFFLINE" not in env
    # The build-time CA bundle and proxies must not leak into the image's configuration.
    leaked = {k for k in env if k.upper() in {"PIP_CERT", "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY"}}
    assert not leaked


def test_ca_secret_is_in_no_layer(image: str) -> None:
    result = _run_in_image(image, "sh", "-c", "test ! -e /run/secrets/ca && pip config list")
    assert result.returncode == 0, f"/run/secrets/ca exists in the image or pip failed: {result.stderr}"
    assert "cert" not in result.stdout
