"""Real checkpoints, real archives and a real TorchServe process for the integration tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from archive.build import ArchiveSettings, RuntimeOptions, build
from entrypoints.torchserve import TorchServe, TorchServeConfig, free_port
from tests.helpers import ROOT
from training.config import TrainConfig
from training.run import train

#: (model name, architecture, task, example folder, use_bbox)
MODELS = [("ner", "bert", "ner", "ner", False), ("classif", "bert", "classif", "classif", False),
          ("multilabel", "distilbert", "multilabel-classif", "multilabel-classif", False),
          ("regression", "bert", "regression", "regression", False),
          ("pair", "bert", "pair-classif", "pair-classif", False),
          ("layoutlm", "layoutlm", "ner", "layoutlm-ner", True)]


@dataclass
class Served:
    name: str
    task: str
    checkpoint: Path
    data: Path
    extracted: Path  # model.tar.gz unpacked, as SageMaker lays it out


#: the archives the serving tests build batch up to 8 requests, waiting at most 50 ms for them
SMALL_BATCHES = ArchiveSettings(batch_size=8, max_batch_delay_ms=50)


def train_and_archive(name: str, arch: str, task: str, data: Path, use_bbox: bool, base: Path, root: Path,
                      settings: ArchiveSettings = SMALL_BATCHES) -> Served:
    config = TrainConfig.from_hyperparameters({
        "task_name": task, "model_name": str(base), "use_bbox": str(use_bbox).lower(), "max_steps": "6",
        "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8", "learning_rate": "1e-3"})
    checkpoint = train(config, data, root / "checkpoints" / name).output
    # the default runtime: ONNX where it passes the parity gate on this data's test.csv, torch otherwise
    built = build(checkpoint, root / "store", name=name, settings=settings, runtime=RuntimeOptions(data=data))
    built.tarball.rename(root / "store" / f"{name}.tar.gz")
    extracted = root / "extracted" / name
    extracted.mkdir(parents=True)
    with tarfile.open(root / "store" / f"{name}.tar.gz") as tf:
        tf.extractall(extracted, filter="data")
    return Served(name, task, checkpoint, data, extracted)


def start_server(store: Path, work: Path, load: list[str], log_file: Path, **overrides) -> TorchServe:
    ports = [free_port() for _ in range(3)]
    config = TorchServeConfig(
        model_store=store, inference_address=f"http://127.0.0.1:{ports[0]}",
        management_address=f"http://127.0.0.1:{ports[1]}", metrics_address=f"http://127.0.0.1:{ports[2]}",
        load_models=load, java_heap="384m", **overrides)
    server = TorchServe(config, work, stdout=open(log_file, "wb"))
    return server


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 120) -> tuple[int, str, bytes]:
    """(status, content type, body) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def post_json(url: str, payload, accept: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    return http("POST", url, json.dumps(payload).encode(), headers)


def wait_invocable(url: str, name: str, timeout: float = 120) -> None:
    """Until a multi-model ``name`` answers an invocation (its worker finished loading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if post_json(f"{url}/models/{name}/invoke", {"text": "warm up"})[0] == 200:
            return
        time.sleep(0.5)
    raise TimeoutError(name)


def batch_transform_input(folder: Path) -> tuple[Path, Path, list[str], tuple[int, int]]:
    """A ~1.7 MB jsonlines input with two bad lines in the middle (a wrong type, not JSON): more than one
    1 MB Batch Transform payload. Returns (input, output path, the lines, the bad line indices)."""
    lines = [json.dumps({"text": f"the team won match number {i} " * 20}) for i in range(3000)]
    bad = (1500, 1501)
    lines[bad[0]] = '{"text": 42}'
    lines[bad[1]] = "not json at all"
    source, output = folder / "in.jsonl", folder / "out.jsonl"
    source.write_text("\n".join(lines) + "\n")
    return source, output, lines, bad


class Serve:
    """`python -m entrypoints serve` as SageMaker starts it."""

    def __init__(self, base: Path, **env: str) -> None:
        self.base, self.port = base, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(self.port),
                    "PYTHONPATH": str(ROOT), **env}
        self.log = base / "serve.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "entrypoints", "serve"], cwd=ROOT, env=full_env,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ping(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                loaded = any(line in self.log.read_text() for line in ("model ready", "multi-model"))
                if loaded and http("GET", self.url + "/ping", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(self.log.read_text()[-3000:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode
