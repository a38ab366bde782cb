#!/usr/bin/env bash
# Start, stop or query a Docker engine for builds and tests on a machine without a service manager.
#
#   docker/dockerd.sh start    ensure an engine answers; start dockerd only if none does (idempotent)
#   docker/dockerd.sh stop     stop dockerd only if this script started it (its PID is in the state dir)
#   docker/dockerd.sh status   exit 0 if an engine answers, 1 otherwise
#
# Exit status 2 from `start` means "no engine can be started here" (no dockerd binary, or not root):
# callers such as the pytest fixture skip on 2 and fail on anything else.
#
# Typical use from a test script:
#   docker/dockerd.sh status || { docker/dockerd.sh start && trap 'docker/dockerd.sh stop' EXIT; }
#
# Environment:
#   DOCKER              client binary (default /usr/bin/docker: Debian's client does BuildKit builds without
#                       the buildx plugin, which newer static clients on PATH may insist on)
#   SMTX_DOCKERD_DIR    state dir holding dockerd.pid and dockerd.log (default /tmp/smtx-dockerd)
#   SMTX_DOCKERD_WAIT   seconds to wait for the engine to answer (default 60)
set -euo pipefail

DOCKER="${DOCKER:-/usr/bin/docker}"
STATE_DIR="${SMTX_DOCKERD_DIR:-/tmp/smtx-dockerd}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
WAIT_S="${SMTX_DOCKERD_WAIT:-60}"

log() { echo "dockerd.sh: $*" >&2; }

engine_answers() { "$DOCKER" info >/dev/null 2>&1; }

# The PID in the state file is ours only while that process is still a dockerd (PIDs get reused).
owned_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
    echo "$pid"
}

start() {
    if engine_answers; then
        log "engine already running; leaving it as it is"
        return 0
    fi
    if [[ ! -x "$DOCKER" ]]; then
        log "no Docker client at $DOCKER (apt-get install -y docker.io)"
        return 2
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        log "no dockerd on PATH (apt-get install -y docker.io)"
        return 2
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        log "dockerd needs root and none is running; cannot start one as uid $(id -u)"
        return 2
    fi
    if owned_pid >/dev/null; then
        log "dockerd $(owned_pid) is ours but does not answer; restarting it"
        stop
    fi
    mkdir -p "$STATE_DIR"
    # setsid: the engine must not die with the caller's terminal or process group (pytest, make).
    setsid dockerd >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    local waited=0
    until engine_answers; do
        if ! owned_pid >/dev/null; then
            log "dockerd exited during start-up; last lines of $LOG_FILE:"
            tail -n 20 "$LOG_FILE" >&2
            rm -f "$PID_FILE"
            return 1
        fi
        if ((waited >= WAIT_S)); then
            log "dockerd did not answer within ${WAIT_S}s; last lines of $LOG_FILE:"
            tail -n 20 "$LOG_FILE" >&2
            stop
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "started dockerd $(cat "$PID_FILE") (log: $LOG_FILE)"
}

stop() {
    local pid
    if ! pid="$(owned_pid)"; then
        rm -f "$PID_FILE"
        log "no dockerd started by this script is running; nothing to stop"
        return 0
    fi
    kill -TERM "$pid"
    # dockerd stops its containers and its managed containerd first; give it time before forcing.
    for _ in $(seq 1 30); do
        [[ -d "/proc/$pid" ]] || break
        sleep 1
    done
    if [[ -d "/proc/$pid" ]]; then
        log "dockerd $pid ignored SIGTERM for 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped dockerd $pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) engine_answers ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 64
        ;;
esac
