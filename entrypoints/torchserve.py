"""Start and stop a real TorchServe process from one typed config (used by ``serve``, the tests and bench).

Each server gets its own working directory and ``TMPDIR``: the ``torchserve`` command keeps its PID file in the
temporary directory, so two servers sharing one would refuse to start or stop each other.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping

from tasks.serving_contract import WorkerContext

ROOT = Path(__file__).resolve().parents[1]
#: on the workers' PYTHONPATH: its sitecustomize keeps TorchServe's own torch import out of an ONNX worker
WORKER_SITE = Path(__file__).resolve().parent / "worker_site"


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (for a server about to start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # (host, port) for an AF_INET socket; typeshed says Any
        return port


def config_dir() -> Path:
    """``config/`` of a checkout, or the copy an installed package carries (``<prefix>/share/smtx/config``)."""
    for candidate in (ROOT / "config", Path(sys.prefix) / "share" / "smtx" / "config"):
        if (candidate / "log4j2.xml").is_file():
            return candidate
    raise FileNotFoundError("no config/log4j2.xml found beside the code or under sys.prefix/share/smtx")


@dataclass
class TorchServeConfig:
    model_store: Path
    inference_address: str = "http://127.0.0.1:8080"
    management_address: str = "http://127.0.0.1:8081"
    #: nobody scrapes metrics here: port 0 lets the OS pick, so servers never collide on it
    metrics_address: str = "http://127.0.0.1:0"
    #: "name=dir-or-mar" entries loaded at start (empty: start with no model, as multi-model endpoints do)
    load_models: list[str] = field(default_factory=list)
    workers: int = 1
    response_timeout_s: int = 120
    max_request_bytes: int = 6 * 1024 * 1024
    max_response_bytes: int = 6 * 1024 * 1024
    allowed_urls: list[str] = field(default_factory=list)
    job_queue_size: int = 1000
    java_heap: str = "512m"
    #: False in SageMaker single-model mode: no route may load a model there
    enable_model_api: bool = True
    #: TorchServe always opens gRPC too (7070/7071 by default); 0 lets the OS pick free ports, so several
    #: servers on one machine do not collide on ports nobody uses here
    grpc_inference_port: int = 0
    grpc_management_port: int = 0
    #: JVM flags. The serial collector: one GC thread, not one per core, and the smallest footprint for a heap
    #: that holds request buffers only; -XX:-UsePerfData: no hsperfdata file to write at start
    jvm_flags: str = "-XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData"

    def properties(self) -> str:
        lines = {
            "inference_address": self.inference_address,
            "management_address": self.management_address,
            "metrics_address": self.metrics_address,
            "model_store": str(self.model_store),
            "disable_token_authorization": "true",  # SageMaker sends no token
            "enable_model_api": "true" if self.enable_model_api else "false",  # POST/DELETE /models
            "decode_input_request": "false",  # the handler decodes every content type itself
            "install_py_dep_per_model": "false",
            "default_workers_per_model": str(self.workers),
            "default_response_timeout": str(self.response_timeout_s),
            "unregister_model_timeout": str(self.response_timeout_s),
            "max_request_size": str(self.max_request_bytes),
            "max_response_size": str(self.max_response_bytes),
            "job_queue_size": str(self.job_queue_size),
            "grpc_inference_address": "127.0.0.1",
            "grpc_management_address": "127.0.0.1",
            "grpc_inference_port": str(self.grpc_inference_port),
            "grpc_management_port": str(self.grpc_management_port),
            # start-up: the system-metrics collector is a Python process TorchServe spawns at once and every
            # minute, competing with the model's worker for the cores; nobody scrapes metrics here (logged off)
            "disable_system_metrics": "true",
            "enable_metrics_api": "false",
            "vmargs": f"-Xmx{self.java_heap} {self.jvm_flags}",
        }
        if self.load_models:
            lines["load_models"] = ",".join(self.load_models)
        if self.allowed_urls:
            lines["allowed_urls"] = ",".join(self.allowed_urls)
        return "".join(f"{k}={v}\n" for k, v in lines.items())


class TorchServe:
    """A TorchServe process in the foreground of this one (so its output and exit are ours to see)."""

    def __init__(self, config: TorchServeConfig, work_dir: Path, env: Mapping[str, str] | None = None,
                 stdout: IO[bytes] | None = None) -> None:
        self.config = config
        self.work_dir = Path(work_dir)
        (self.work_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.config_file = self.work_dir / "config.properties"
        self.config_file.write_text(config.properties(), encoding="utf-8")
        env = dict(os.environ if env is None else env)
        env.update({"TMPDIR": str(self.work_dir / "tmp"), "TEMP": str(self.work_dir / "tmp"),
                    "LOG_LOCATION": str(self.work_dir / "logs"), "METRICS_LOCATION": str(self.work_dir / "logs")})
        # the workers must import the archive's code, not a checkout's: keep our root off their path (the worker
        # site holds one sitecustomize.py and no package)
        env["PYTHONPATH"] = str(WORKER_SITE)
        # the handler answers 413 for an answer over this size; TorchServe would drop it and kill the worker
        env.update(WorkerContext(max_response_bytes=config.max_response_bytes - 64 * 1024).to_env())
        torchserve = shutil.which("torchserve", path=os.path.dirname(sys.executable)) or "torchserve"
        cmd = [torchserve, "--start", "--foreground", "--ncs", "--ts-config", str(self.config_file),
               "--log-config", str(config_dir() / "log4j2.xml"), "--model-store", str(config.model_store)]
        # own process group: stop() signals TorchServe's java and Python workers together
        self.process = subprocess.Popen(cmd, cwd=self.work_dir, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def get(self, url: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 -- loopback URL of our server
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, model: str | None = None, timeout: float = 180.0) -> None:
        """Until /ping answers and, if named, ``model`` has a READY worker; raise with the reason otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"TorchServe exited with code {self.process.returncode}")
            try:
                status, _ = self.get(self.config.inference_address + "/ping", timeout=2)
                if status == 200 and (model is None or self.model_ready(model)):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"TorchServe not ready after {timeout:.0f}s" + (f" (model {model})" if model else ""))

    def model_ready(self, model: str) -> bool:
        status, body = self.get(f"{self.config.management_address}/models/{model}", timeout=2)
        if status != 200:
            return False
        workers = [w for entry in json.loads(body) for w in entry.get("workers", [])]
        return any(w.get("status") == "READY" for w in workers)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        return self.process.returncode
