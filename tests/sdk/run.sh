#!/usr/bin/env bash
# `make test-sdk`: the SageMaker Python SDK (sagemaker<3, local mode) drives the smtx:cpu image. Opt-in, not part
# of `make test`. As root on a Debian machine it installs docker.io, debootstrap and docker-compose (local mode shells
# out to `docker compose` v2 or `docker-compose`; Debian ships the latter); it starts dockerd if none answers
# (stopping it again at the end), builds the image, prepares a tiny model and data with the project venv, then runs
# tests/sdk with the SDK venv's python (.venv-sdk: the SDK pins boto3, numpy and others differently from us).
set -euo pipefail
cd "$(dirname "$0")/../.."
SDK_VENV="${SDK_VENV:-.venv-sdk}"
IMAGE="${SMTX_SDK_IMAGE:-smtx:cpu}"
PY="${PY:-.venv/bin/python}"  # the project venv: it builds the image context and the test model
export DOCKER="${DOCKER:-/usr/bin/docker}"

if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
    && ! { [[ -x /usr/bin/docker ]] && command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
           && command -v docker-compose >/dev/null; }; then
    echo "installing docker.io, debootstrap and docker-compose for the SDK tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap docker-compose >/dev/null
fi
command -v docker-compose >/dev/null || "$DOCKER" compose version >/dev/null 2>&1 \
    || { echo "test-sdk needs docker-compose (or the docker compose plugin)"; exit 2; }

if [[ ! -x "$SDK_VENV/bin/python" ]] || ! "$SDK_VENV/bin/python" -c 'import sagemaker, pytest' 2>/dev/null; then
    python3 -m venv "$SDK_VENV"
    "$SDK_VENV/bin/python" -m pip install --quiet 'sagemaker<3' pytest
fi

work="$(mktemp -d /tmp/smtx-sdk.XXXXXX)"
started_engine=0
cleanup() {
    # local mode runs `docker-compose up` and never removes the containers: drop those of this run's compose files
    "$DOCKER" ps -a --format '{{.ID}} {{.Label "com.docker.compose.project.working_dir"}}' 2>/dev/null \
        | awk -v w="$work/" 'index($2, w) == 1 {print $1}' | xargs -r "$DOCKER" rm -f >/dev/null || true
    rm -rf "$work"
    if [[ $started_engine == 1 ]]; then docker/dockerd.sh stop; fi
}
trap cleanup EXIT
if ! docker/dockerd.sh status; then
    docker/dockerd.sh start
    started_engine=1
fi
# build.sh leaves an engine it did not start running; a no-op when the image is up to date (1-5 s)
IMAGE="$IMAGE" PYTHON="$PY" docker/build.sh

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" tests/sdk/prepare.py "$work"
# no telemetry calls home from the SDK (each would wait on DNS and log a traceback where nothing is reachable)
printf 'SchemaVersion: "1.0"\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n' >"$work/sdk-config.yaml"
# the SDK's own docker client is the one on PATH; put Debian's first, as build.sh and the fixtures do
PATH="$(dirname "$DOCKER"):$PATH" SMTX_SDK=1 SMTX_SDK_WORK="$work" SMTX_SDK_IMAGE="$IMAGE" SAGEMAKER_SUPPRESS_V2_WARNING=1 \
    SAGEMAKER_USER_CONFIG_OVERRIDE="$work/sdk-config.yaml" \
    "$SDK_VENV/bin/python" -m pytest -q -s -p no:cacheprovider --durations=10 tests/sdk "$@"
