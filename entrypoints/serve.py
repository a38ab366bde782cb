"""``serve``: TorchServe the way SageMaker runs it -- single model, multi-model, Batch Transform.

This process stays PID 1's direct concern: ``torchserve --foreground`` ignores SIGTERM as PID 1, so we run it as
a child in its own process group and handle signals here. /ping alone says Healthy even when the model failed to
load, so in single-model mode a watchdog waits for a READY worker and stops the server (making /ping fail) with
the reason in the log when the model cannot load within the startup timeout.

Multi-model: TorchServe listens on loopback only, behind ``entrypoints.gate`` on SageMaker's port, which refuses
any registration from outside the models root before TorchServe could import that directory's handler.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from entrypoints.gate import Gate, GateConfig
from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port
from tasks.serving_contract import VARIABLES, ServeConfig, ServeConfigError, WorkerContext

log = logging.getLogger("entrypoints.serve")
MODEL_NAME = "model"
CONFIG_FILE = "model-config.yaml"
#: model-config.yaml key (``ServeConfig.overrides``) -> the ``POST /models`` field that sets it on a model
#: registered later. initial_workers sets both minWorkers and maxWorkers. Not here: responseTimeout, which
#: TorchServe 0.12 takes from the archive's model-config.yaml over the registration's
REGISTRATION_FIELDS = {"batchSize": "batch_size", "maxBatchDelay": "max_batch_delay", "minWorkers": "initial_workers"}


def torchserve_config(config: ServeConfig, store: Path, internal_port: int | None = None) -> TorchServeConfig:
    """Single model: TorchServe on SageMaker's port, serving ``store/model`` (see ``model_view``). Multi-model: on
    ``internal_port`` of loopback, behind the gate."""
    # SageMaker: management and inference on one port
    address = f"http://127.0.0.1:{internal_port}" if config.multi_model else f"http://0.0.0.0:{config.port}"
    payload = config.max_payload_mb * 1024 * 1024
    common = TorchServeConfig(
        model_store=store,
        # the frontend holds a request while the worker reads it, and the answer while the client does: a heap for
        # both, with room (asynchronous inference takes payloads up to 1 GB)
        java_heap=f"{max(512, 3 * config.max_payload_mb + 256)}m",
        inference_address=address, management_address=address,
        workers=config.workers, response_timeout_s=config.response_timeout_s, max_request_bytes=payload,
        max_response_bytes=payload, job_queue_size=max(100, 4 * config.max_concurrent_transforms),
    )
    if config.multi_model:
        root = str(config.models_root)
        # the gate (entrypoints/gate.py) refuses every other path before TorchServe sees it; allowed_urls (URLs
        # only) and the handler's own check (after a worker started) stay as second and third lines
        return replace(common, model_store=config.models_root, allowed_urls=[f"file://{root}/.*"])
    return replace(common, load_models=[f"{MODEL_NAME}={MODEL_NAME}"], enable_model_api=False)


def model_view(model_dir: Path, store: Path, overrides: Mapping[str, Any]) -> Path:
    """``store/model``: the archive with the environment's server settings in its ``model-config.yaml``.

    TorchServe 0.12 takes a model's batch size, batch delay and workers from the archive's model-config.yaml over
    anything in config.properties, and /opt/ml/model is read-only: the view is a tree of links to the archive's
    files with its own merged model-config.yaml, and a MANIFEST that names it."""
    import yaml

    view = store / MODEL_NAME
    for folder, _dirs, files in os.walk(model_dir):
        rel = Path(folder).relative_to(model_dir)
        (view / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if rel == Path(".") and name == CONFIG_FILE or rel == Path("MAR-INF") and name == "MANIFEST.json":
                continue
            (view / rel / name).symlink_to(Path(folder).resolve() / name)
    settings: dict[str, Any] = {}
    if (model_dir / CONFIG_FILE).is_file():
        settings = yaml.safe_load((model_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    (view / CONFIG_FILE).write_text(yaml.safe_dump({**settings, **overrides}, sort_keys=False), encoding="utf-8")
    manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text(encoding="utf-8"))
    manifest.setdefault("model", {})["configFile"] = CONFIG_FILE
    (view / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return view


def registration_defaults(config: ServeConfig) -> dict[str, int]:
    """What every model registered through ``POST /models`` gets unless its registration names its own: the
    settings the startup model gets from the environment (``ServeConfig.overrides``). A registration's own fields
    beat the archive's model-config.yaml in TorchServe (batch size and delay; workers where the archive names
    none), as the environment does for the startup model."""
    return {REGISTRATION_FIELDS[key]: value for key, value in config.overrides().items() if key in REGISTRATION_FIELDS}


def visible_gpus(env: Mapping[str, str], devices: Iterable[str]) -> int:
    """GPUs this container can use, without importing torch: the ``/dev/nvidiaN`` device files (``devices``: the
    names in /dev), narrowed by ``CUDA_VISIBLE_DEVICES`` where set (CUDA reads its list up to the first invalid
    entry; "" or "-1" hide every GPU)."""
    count = sum(1 for name in devices if re.fullmatch(r"nvidia\d+", name))
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return count
    valid = 0
    for entry in listed.split(","):
        entry = entry.strip()
        if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
            break
        valid += 1
    return min(count, valid)


def with_default_workers(config: ServeConfig, gpus: int) -> ServeConfig:
    """One worker per visible GPU (TorchServe gives each its own ``gpu_id``), else one; an environment that names
    SAGEMAKER_MODEL_SERVER_WORKERS keeps its value."""
    if VARIABLES["workers"].name in config.named or gpus < 1:
        return config
    return replace(config, workers=min(gpus, VARIABLES["workers"].high or gpus))


def check_model(config: ServeConfig) -> None:
    from runtimes.checkpoint import check_checkpoint

    if not (config.model_dir / "MAR-INF" / "MANIFEST.json").is_file():
        raise RuntimeError(f"{config.model_dir} is not an extracted model.tar.gz from `make archive` "
                           "(no MAR-INF/MANIFEST.json)")
    check_checkpoint(config.model_dir)


class Server:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.stop_reason: str | None = None
        self.work = Path(tempfile.mkdtemp(prefix="smtx-serve-"))
        self.failures = self.work / "load-failures"
        self.failures.mkdir()
        self.busy = self.work / "busy"  # one file per worker while it runs a batch (see handlers/ts_handler.py)
        self.busy.mkdir()
        worker = WorkerContext(failure_dir=str(self.failures), busy_dir=str(self.busy),
                               allowed_root=str(config.models_root) if config.multi_model else None)
        env = {**os.environ, **worker.to_env()}
        self.gate: Gate | None = None
        internal_port = None
        if config.multi_model:
            internal_port = free_port()
            # bound before TorchServe starts: a port already taken is a startup error, not a half-started server
            self.gate = Gate(("0.0.0.0", config.port), GateConfig(  # nosec B104 -- SageMaker sends to this port
                models_root=config.models_root, upstream_host="127.0.0.1", upstream_port=internal_port,
                upstream_timeout_s=config.response_timeout_s + 30,
                max_request_bytes=config.max_payload_mb * 1024 * 1024,
                registration_defaults=registration_defaults(config)))
        store = self.work / "store"
        if not config.multi_model:
            model_view(config.model_dir, store, config.overrides())
        self.ts = TorchServe(torchserve_config(config, store, internal_port), self.work, env=env, stdout=None)
        if self.gate is not None:
            self.gate.start()

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_reason = signal.Signals(signum).name

    def load_failure(self) -> str | None:
        reasons = [p.read_text(encoding="utf-8").strip() for p in sorted(self.failures.glob("*.txt"))]
        return "; ".join(reasons) or None

    def watch_startup(self) -> str | None:
        """None once the model serves; else why it never will."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline and self.stop_reason is None:
            if self.ts.process.poll() is not None:
                return f"TorchServe exited with code {self.ts.process.returncode} while loading the model"
            failure = self.load_failure()
            if failure:
                return f"the model failed to load: {failure}"
            try:
                if self.ts.model_ready(MODEL_NAME):
                    return None
            except OSError:
                pass
            time.sleep(0.5)
        return None if self.stop_reason else f"the model did not load within {self.config.startup_timeout_s}s"

    def drain(self) -> None:
        """Let queued and running requests finish (SageMaker allows 30 s after SIGTERM), then stop.

        Idle means no queued job and no worker inside a batch, seen twice in a row: a job can sit in TorchServe's
        batch aggregator between the two. The last answers still need to cross the frontend, hence the grace."""
        deadline = time.monotonic() + self.config.drain_timeout_s
        idle_checks = 0
        while time.monotonic() < deadline and self.ts.process.poll() is None and idle_checks < 2:
            idle_checks = idle_checks + 1 if self.pending() == 0 and not self.busy_workers() else 0
            time.sleep(0.25)
        time.sleep(0.5)
        self.stop(timeout=max(1.0, deadline - time.monotonic() + 5))

    def stop(self, timeout: float) -> None:
        """Stop TorchServe and the gate, and remove this server's work folder (config, model view, logs)."""
        self.ts.stop(timeout=timeout)
        if self.gate is not None:
            self.gate.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def busy_workers(self) -> list[int]:
        """Workers inside a batch; a marker left by a worker that was killed mid-batch does not count."""
        alive = []
        for marker in self.busy.iterdir():
            try:
                os.kill(int(marker.name), 0)
                alive.append(int(marker.name))
            except (ValueError, ProcessLookupError):
                marker.unlink(missing_ok=True)
            except PermissionError:
                alive.append(int(marker.name))
        return alive

    def pending(self) -> int:
        try:
            status, body = self.ts.get(f"{self.ts.config.management_address}/models", timeout=2)
            names = [m["modelName"] for m in json.loads(body).get("models", [])] if status == 200 else []
            total = 0
            for name in names:
                _, described = self.ts.get(f"{self.ts.config.management_address}/models/{name}", timeout=2)
                for entry in json.loads(described):
                    total += int(entry.get("jobQueueStatus", {}).get("pendingRequests", 0))
            return total
        except (OSError, ValueError):
            return 0


def main(argv: list[str] | None = None) -> int:
    from training.logs import setup_logging

    setup_logging()
    try:
        config = ServeConfig.from_env(os.environ)
    except ServeConfigError as exc:
        log.error("cannot serve: %s", exc)
        return 2
    config = with_default_workers(config, visible_gpus(os.environ, os.listdir("/dev") if os.path.isdir("/dev") else []))
    if not config.multi_model:
        try:
            check_model(config)
        except (RuntimeError, ValueError) as exc:  # CheckpointError is a ValueError
            log.error("cannot serve: the model failed to load: %s", exc)
            return 1
    log.info("serving on port %d: %s%s, %d worker(s) per model", config.port,
             "multi-model" if config.multi_model else "single model",
             ", Batch Transform" if config.batch_transform else "", config.workers)
    try:
        server = Server(config)
    except OSError as exc:
        log.error("cannot serve: port %d: %s", config.port, exc)
        return 1
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    if not config.multi_model:
        problem = server.watch_startup()
        if problem:
            log.error("stopping: %s", problem)
            server.stop(timeout=10)
            return 1
        log.info("model ready")
    while server.stop_reason is None and server.ts.process.poll() is None:
        time.sleep(0.2)
    if server.stop_reason is None:
        log.error("TorchServe exited unexpectedly with code %s", server.ts.process.returncode)
        server.stop(timeout=1)
        return 1
    log.info("%s received: draining in-flight requests", server.stop_reason)
    server.drain()
    return 0
