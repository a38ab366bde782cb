"""Build the SageMaker image with docker/build.sh and check what SageMaker and TorchServe rely on.

The engine and the build come from tests/helpers/docker_fixtures.py (skipped only where no engine can be started
at all). Containers run with ``--network none``: the image must hold everything it needs. The SageMaker scenarios
themselves (train, serve, multi-model, Batch Transform) are in test_sagemaker.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

pytest.register_assert_rewrite("tests.helpers.docker_fixtures")  # before the import below: its asserts explain failures
from tests.helpers.docker_fixtures import DOCKER, ROOT, VARIANT  # noqa: E402 -- after register_assert_rewrite, as it requires

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# a plugin, not an import, so that the session's engine and build are shared with test_sagemaker.py
pytest_plugins = ["tests.helpers.docker_fixtures"]


def _torch_pin() -> str:
    match = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match, "requirements.txt pins no torch==X"
    return match.group(1)


def _run_in_image(image: str, entrypoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, "run", "--rm", "--network", "none", "--entrypoint", entrypoint, image, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def config(image: str) -> dict:
    """``docker image inspect``'s Config section."""
    result = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]["Config"]


def test_stack_imports_offline_with_the_variants_torch(image: str) -> None:
    result = _run_in_image(
        image, "python3", "-c",
        "import torch, transformers, ts, onnxruntime, tasks; print(torch.__version__, torch.version.cuda)"
    )
    assert result.returncode == 0, result.stderr
    version, cuda = result.stdout.split()
    if VARIANT == "cpu":
        assert (version, cuda) == (f"{_torch_pin()}+cpu", "None")
    else:  # PyPI's default build (2.13.0+cu130), its CUDA libraries from the nvidia-* wheels
        assert version.startswith(f"{_torch_pin()}+cu") and cuda != "None", result.stdout


def test_java_17_for_the_torchserve_frontend(image: str) -> None:
    result = _run_in_image(image, "java", "-version")
    assert result.returncode == 0, result.stderr
    assert re.search(r'version "17\.', result.stderr), result.stderr


def test_kill_for_the_torchserve_frontend(image: str) -> None:
    # TorchServe stops a worker (DELETE /models, scale-down) by exec'ing `kill -9 PID`: a shell builtin won't do
    result = _run_in_image(image, "sh", "-c", "test -x /bin/kill || test -x /usr/bin/kill")
    assert result.returncode == 0, "no kill executable in the image (Debian package procps)"


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
