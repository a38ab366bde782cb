#!/usr/bin/env bash
# The test command (`make test`, and CI through .ci/run). Docker tests need an engine: as root on a Debian
# machine we install docker.io and debootstrap (the scripts start dockerd themselves); elsewhere they skip.
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null && ! { [[ -x /usr/bin/docker ]] && command -v dockerd >/dev/null && command -v debootstrap >/dev/null; }; then
    echo "installing docker.io and debootstrap for the container tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null) \
        || echo "could not install Docker: the container tests will skip"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# -rs: every skip with its reason; tests/conftest.py then ends the run with one line per tier ("tiers: unit 520
# passed; ...") and a loud line for a tier where every test skipped (docker without an engine, say)
.venv/bin/python -m pytest -q -rs -p no:cacheprovider --durations=15 "$@"
rc=$?
if [[ $rc == 5 ]]; then
    echo "pytest collected no tests"
    exit 1
fi
exit $rc
