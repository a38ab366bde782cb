#!/usr/bin/env bash
# Assemble docker/context/ and build the SageMaker image with BuildKit (`make docker-build` runs this).
#
#   docker/build.sh                         CPU image on the local debootstrap base, tagged smtx:cpu
#   TORCH_VARIANT=gpu docker/build.sh       CUDA torch from PyPI, tagged smtx:gpu (make docker-build VARIANT=gpu)
#   BASE_IMAGE=debian:bookworm-slim docker/build.sh    use a registry base instead of the local one
#
# Environment (all optional):
#   IMAGE          tag to build (default smtx:$TORCH_VARIANT)
#   TORCH_VARIANT  cpu (default) or gpu
#   BASE_IMAGE     base image; unset = smtx-base:bookworm, built by docker/base-image.sh when missing
#   TORCH_WHEEL    a CPU torch wheel to use instead of `pip download` (for machines where PyPI's default
#                  torch is a CUDA build and no CPU wheel is on a find-links path)
#   GPU_WHEELS     folder caching the CUDA torch wheel and its nvidia-* wheels (default docker/wheels-gpu,
#                  git-ignored; ~2.6 GB, downloaded once with `pip download --isolated`)
#   CA_BUNDLE      CA bundle handed to pip as the BuildKit secret `ca` (default: PIP_CERT, REQUESTS_CA_BUNDLE,
#                  SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt, whichever is set/exists first)
#   PYTHON         interpreter whose pip downloads the wheel (default python3)
#   DOCKER         client binary (default /usr/bin/docker)
#   BUILD_ARGS     extra arguments for `docker build` (word-split), e.g. "--no-cache"
# Starts a Docker engine if none answers (and stops it again on exit); needs root for that.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CONTEXT="$HERE/context"
TORCH_VARIANT="${TORCH_VARIANT:-cpu}"
if [[ "$TORCH_VARIANT" == gpu ]]; then WHEELS="${GPU_WHEELS:-$HERE/wheels-gpu}"; else WHEELS="$HERE/wheels"; fi
IMAGE="${IMAGE:-smtx:$TORCH_VARIANT}"
PYTHON="${PYTHON:-python3}"
export DOCKER="${DOCKER:-/usr/bin/docker}"

log() { echo "build.sh: $*" >&2; }

case "$TORCH_VARIANT" in
    cpu | gpu) ;;
    *) log "TORCH_VARIANT must be cpu or gpu, not '$TORCH_VARIANT'"; exit 64 ;;
esac

first_existing() {
    local f
    for f in "$@"; do
        [[ -n "$f" && -s "$f" ]] && { echo "$f"; return 0; }
    done
    return 1
}

# --- engine ------------------------------------------------------------------------------------------
if ! "$HERE/dockerd.sh" status; then
    "$HERE/dockerd.sh" start
    trap '"$HERE/dockerd.sh" stop' EXIT
fi

# --- base image --------------------------------------------------------------------------------------
if [[ -z "${BASE_IMAGE:-}" ]]; then
    BASE_IMAGE=smtx-base:bookworm
    BASE_TAG="$BASE_IMAGE" "$HERE/base-image.sh"
fi

# --- torch wheels ------------------------------------------------------------------------------------
torch_pin="$(sed -n 's/^torch==\([^[:space:]#]*\).*/\1/p' "$ROOT/requirements.txt")"
[[ -n "$torch_pin" ]] || { log "requirements.txt has no torch==X pin"; exit 1; }
torch_wheel=""
context_wheels=()
if [[ "$TORCH_VARIANT" == cpu ]]; then
    if [[ -n "${TORCH_WHEEL:-}" ]]; then
        torch_wheel="$TORCH_WHEEL"
    else
        torch_wheel="$(first_existing "$WHEELS"/torch-"$torch_pin"+cpu-cp311-*.whl || true)"
        if [[ -z "$torch_wheel" ]]; then
            # The image's python is 3.11 whatever the host runs; --no-deps: the image resolves the rest.
            "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
                "torch==$torch_pin" -d "$WHEELS"
            torch_wheel="$(first_existing "$WHEELS"/torch-"$torch_pin"+cpu-cp311-*.whl || true)"
        fi
    fi
    if [[ ! "$(basename "$torch_wheel")" =~ ^torch-${torch_pin//./\\.}\+cpu-cp311-.*\.whl$ ]]; then
        log "no CPU torch $torch_pin wheel for cp311 (have: $(find "$WHEELS" -maxdepth 1 -name '*.whl' -printf '%f ' 2>/dev/null))"
        log "PyPI's default torch is a CUDA build; set TORCH_WHEEL=/path/to/torch-$torch_pin+cpu-cp311-....whl"
        exit 1
    fi
    context_wheels=("$torch_wheel")
else
    # PyPI's torch is the CUDA build; its nvidia-* libraries are separate wheels. All of them are cached once in
    # $WHEELS, so a rebuild downloads nothing and the image installs them from the context (find-links first).
    # --isolated: ignore this machine's pip configuration (find-links or constraints that point at CPU wheels).
    gpu_wheel() { first_existing "$WHEELS"/torch-"$torch_pin"-cp311-cp311-manylinux*_x86_64.whl; }
    if ! gpu_wheel >/dev/null; then
        mkdir -p "$WHEELS"
        platforms=(--platform linux_x86_64 --platform manylinux2014_x86_64)
        for minor in $(seq 5 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done  # bookworm: glibc 2.36
        log "downloading the CUDA build of torch $torch_pin and its nvidia-* wheels into $WHEELS (once, ~2.6 GB)"
        ca="$(first_existing "${CA_BUNDLE:-}" "${PIP_CERT:-}" /etc/ssl/certs/ca-certificates.crt || true)"
        "$PYTHON" -m pip download --isolated --quiet ${ca:+--cert "$ca"} --only-binary=:all: --python-version 3.11 \
            --implementation cp "${platforms[@]}" "torch==$torch_pin" -d "$WHEELS"
    fi
    gpu_wheel >/dev/null || { log "no CUDA torch $torch_pin wheel for cp311 in $WHEELS"; exit 1; }
    mapfile -t context_wheels < <(find "$WHEELS" -maxdepth 1 -name '*.whl' | sort)
fi

# --- build context -----------------------------------------------------------------------------------
# Only what the image needs, so that unrelated files (data, notebooks, .git) neither bloat the upload
# nor invalidate the cache. Packages are the ones pyproject.toml's find-include names.
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/wheels" "$CONTEXT/src"
cp "$ROOT/requirements.txt" "$CONTEXT/"
for wheel in "${context_wheels[@]}"; do
    # A hard link costs nothing; BuildKit hashes content, not inode or mtime, so the cache still hits.
    ln "$wheel" "$CONTEXT/wheels/" 2>/dev/null || cp "$wheel" "$CONTEXT/wheels/"
done
cp "$ROOT/pyproject.toml" "$CONTEXT/src/"
[[ -f "$ROOT/README.md" ]] && cp "$ROOT/README.md" "$CONTEXT/src/"
packages="$("$PYTHON" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
print(" ".join(sorted({p.split(".")[0].rstrip("*") for p in include})))
' "$ROOT/pyproject.toml")"
for pkg in $packages; do
    [[ -d "$ROOT/$pkg" ]] || continue
    cp -r "$ROOT/$pkg" "$CONTEXT/src/"
done
# TorchServe's logging and server configuration, installed as data files (pyproject's data-files)
cp -r "$ROOT/config" "$CONTEXT/src/"
find "$CONTEXT/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
find "$CONTEXT/src" -name '*.pyc' -exec rm -f {} +

# --- build -------------------------------------------------------------------------------------------
ca_bundle="${CA_BUNDLE:-$(first_existing "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" \
    /etc/ssl/certs/ca-certificates.crt || true)}"
build_args=(
    --file "$HERE/Dockerfile"
    --tag "$IMAGE"
    --progress plain
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "TORCH_VARIANT=$TORCH_VARIANT"
)
if [[ -n "$ca_bundle" ]]; then
    build_args+=(--secret "id=ca,src=$ca_bundle")
fi
# Docker's predefined proxy args: used by RUN steps, kept out of the image's history and config.
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY http_proxy https_proxy no_proxy all_proxy; do
    [[ -n "${!var:-}" ]] && build_args+=(--build-arg "$var")
done
# shellcheck disable=SC2206  # BUILD_ARGS is meant to be word-split
build_args+=(${BUILD_ARGS:-})

log "building $IMAGE (torch $TORCH_VARIANT) on $BASE_IMAGE"
start_s=$SECONDS
DOCKER_BUILDKIT=1 "$DOCKER" build "${build_args[@]}" "$CONTEXT"
log "built $IMAGE in $((SECONDS - start_s))s; $("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{ printf "%.0f MB", $1 / 1e6 }')"
