#!/usr/bin/env bash
# Build a local Debian bookworm base image with debootstrap + `docker import`.
#
# Why: where no container registry can be reached, `FROM debian:bookworm-slim` cannot be pulled. A minbase
# debootstrap of the same release is the same userland (same apt, same python3 and JRE packages), so the
# Dockerfile behaves the same on either base.
#
#   docker/base-image.sh            build BASE_TAG unless the engine already has it (cheap no-op when cached)
#   docker/base-image.sh --force    rebuild it anyway (e.g. to pick up Debian point releases)
#
# Environment:
#   BASE_TAG        image tag to create (default smtx-base:bookworm)
#   DEBIAN_MIRROR   Debian mirror (default: the first bookworm mirror in the host's apt sources, else
#                   http://deb.debian.org/debian); the security suite is derived from it
#   DOCKER          client binary (default /usr/bin/docker)
# Needs root, debootstrap and a running engine (docker/dockerd.sh start).
set -euo pipefail

BASE_TAG="${BASE_TAG:-smtx-base:bookworm}"
DOCKER="${DOCKER:-/usr/bin/docker}"
SUITE=bookworm

log() { echo "base-image.sh: $*" >&2; }

# First `URIs:` (deb822) or `deb URI` (one-line) entry for the plain suite, so that the image uses the
# mirror this machine is known to reach (and, behind a proxy, is allowed to reach).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
            END { if (uri != "" && hit) print uri }
        ' "$f" | head -n 1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2; exit }' "$f"
    done
}

if [[ "${1:-}" != "--force" ]] && "$DOCKER" image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "$BASE_TAG already present; skipping debootstrap (pass --force to rebuild)"
    exit 0
fi

command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install -y debootstrap)"; exit 1; }
[[ "$(id -u)" -eq 0 ]] || { log "debootstrap needs root"; exit 1; }

MIRROR="${DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
MIRROR="${MIRROR%/}"
SECURITY_MIRROR="${MIRROR%/debian}/debian-security"

ROOTFS="$(mktemp -d /tmp/smtx-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

log "debootstrap $SUITE from $MIRROR into $ROOTFS"
# minbase = essential + apt, the closest match to debian:bookworm-slim.
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2
    exit 1
}
rm -f "$ROOTFS.log"

# Same suites as the official image: point release, updates and security, so that a Dockerfile's
# `apt-get update && apt-get install` gets fixed packages.
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# What debian:bookworm-slim does too: no downloaded .debs or lists kept in the layer, no man pages/docs.
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends" <<'EOF'
APT::Install-Recommends "false";
EOF
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
# The host's resolv.conf/hostname leak in through debootstrap; the engine provides its own at run time.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

log "importing $ROOTFS as $BASE_TAG"
tar --numeric-owner -C "$ROOTFS" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    - "$BASE_TAG" >/dev/null
log "built $BASE_TAG"
