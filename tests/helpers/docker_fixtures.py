"""The Docker engine, the ``smtx:cpu`` image and throw-away containers, shared by every Docker test module.

``SMTX_DOCKER_VARIANT=gpu`` runs the same tests against the GPU image (``smtx:gpu``, CUDA torch) instead; on a
machine without a GPU that image must train and serve on the CPU, saying so in one log line.

Test modules load this with ``pytest_plugins = ["tests.helpers.docker_fixtures"]`` rather than importing the
fixtures: pytest registers a plugin once, so the session-scoped engine and build happen once per session however
many Docker test files run (an imported fixture is registered again by every module that imports it, and would
build again).

The engine is started through docker/dockerd.sh when none answers and stopped at the end of the session; the tests
skip only where no engine can be started at all (no docker.io installed, or not root).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCKER_DIR = ROOT / "docker"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
#: which image the Docker tests build and run: cpu (default) or gpu
VARIANT = os.environ.get("SMTX_DOCKER_VARIANT", "cpu")
if VARIANT not in ("cpu", "gpu"):
    raise pytest.UsageError(f"SMTX_DOCKER_VARIANT={VARIANT!r} is not valid; expected cpu or gpu")
IMAGE = os.environ.get("SMTX_TEST_IMAGE", f"smtx:{VARIANT}")
#: a cold build (debootstrap + apt + the whole pip stack) takes about 4 minutes on 2 cores
BUILD_TIMEOUT_S = 45 * 60
NO_ENGINE = 2  # docker/dockerd.sh start: "no engine can be started here"
#: every test container carries this label, so a crashed session's leftovers can be found and removed
LABEL = "smtx-test=1"


def report(message: str) -> None:
    """A measurement for people: visible with ``pytest -s`` (and in the captured output of a failure)."""
    print(f"\n[docker] {message}", flush=True)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _dockerd(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DOCKER_DIR / "dockerd.sh"), command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER": DOCKER},
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
    """The image of VARIANT, built (or found in BuildKit's cache) by docker/build.sh."""
    log = tmp_path_factory.mktemp("docker-build") / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            [str(DOCKER_DIR / "build.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            env={**os.environ, "IMAGE": IMAGE, "TORCH_VARIANT": VARIANT, "PYTHON": sys.executable, "DOCKER": DOCKER},
        )
    tail = "\n".join(log.read_text().splitlines()[-60:])
    assert result.returncode == 0, f"docker/build.sh failed (full log: {log}):\n{tail}"
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    report(f"image {IMAGE}: built in {time.monotonic() - started:.0f}s, {size / 1e9:.2f} GB")
    return IMAGE


class Container:
    """One ``docker run -d IMAGE <command>`` with a fake ``/opt/ml`` bind-mounted, as SageMaker starts it.

    Offline (``--network none``) unless ``publish``: then the container's 8080 is published on 127.0.0.1 only.
    Not ``--rm``: its logs and exit code stay readable after it exits; ``remove()`` (``docker rm -f``) is the
    caller's ``finally``, or the ``containers`` fixture's.
    """

    def __init__(self, image: str, command: str, ml: Path, env: dict[str, str] | None = None,
                 publish: bool = False) -> None:
        from tests.helpers.serving_fixtures import free_port

        self.name = f"smtx-test-{uuid.uuid4().hex[:12]}"
        self.port = free_port() if publish else None
        self.url = f"http://127.0.0.1:{self.port}" if publish else ""
        args = ["run", "--detach", "--name", self.name, "--label", LABEL, "--volume", f"{ml}:/opt/ml"]
        args += ["--publish", f"127.0.0.1:{self.port}:8080"] if publish else ["--network", "none"]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        self.started = time.monotonic()
        try:
            docker(*args, image, command)
        except BaseException:
            self.remove()  # `docker run` may have created it before failing (a port taken, say)
            raise

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def tail(self, chars: int = 4000) -> str:
        return f"--- docker logs {self.name} (tail) ---\n{self.logs()[-chars:]}"

    def state(self) -> dict:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def wait(self, timeout: float) -> int:
        """The exit code, once the container has stopped (fails the test after ``timeout`` seconds)."""
        try:
            result = subprocess.run([DOCKER, "wait", self.name], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout:.0f}s\n{self.tail()}") from None
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip())

    def wait_for_log(self, marker: str, timeout: float) -> None:
        """Until ``marker`` appears in the logs; fails at once with the logs if the container exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.logs():
                return
            assert self.state()["Running"], f"container exited before {marker!r}\n{self.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"no {marker!r} within {timeout:.0f}s\n{self.tail()}")

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)


@pytest.fixture
def containers(image: str) -> Iterator:
    """``start(command, ml, env=None, publish=False)`` -> a Container, removed at teardown whatever happened."""
    started: list[Container] = []

    def start(command: str, ml: Path, env: dict[str, str] | None = None, publish: bool = False) -> Container:
        container = Container(image, command, ml, env, publish)
        started.append(container)
        return container

    try:
        yield start
    finally:
        for container in started:
            container.remove()
