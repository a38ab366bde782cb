"""Build ``<name>.mar`` (local TorchServe) and ``model.tar.gz`` (SageMaker) from one staged directory.

The staged directory is what TorchServe loads: the checkpoint's serving files, the ``tasks``, ``runtimes`` and
``handlers`` packages, the handler entry file, ``MAR-INF/MANIFEST.json`` (written by torch-model-archiver) and
``model-config.yaml`` with the batching settings -- a model registered by ``POST /models`` with a JSON body
(SageMaker's multi-model mode) takes its batch settings only from there. The ``.mar`` zips that directory and
``model.tar.gz`` tars it, so both carry the same bytes and nothing is read from outside at serving time.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from archive.checks import check_checkpoint

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("tasks", "runtimes", "handlers")
HANDLER_FILE = "ts_handler.py"
#: checkpoint files that serving needs (metrics, plots and predictions stay with the training output)
SERVING_FILES = ("config.json", "task_spec.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "README.md", "metrics.json")


@dataclass(frozen=True)
class ArchiveSettings:
    """Server-side batching written into model-config.yaml (TorchServe's per-model settings)."""

    batch_size: int = 8
    max_batch_delay_ms: int = 20
    response_timeout_s: int = 120
    startup_timeout_s: int = 300

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < (0 if name == "max_batch_delay_ms" else 1):
                raise ValueError(f"{name}={value!r} is not valid; expected a positive integer")

    def model_config_yaml(self) -> str:
        return (f"batchSize: {self.batch_size}\nmaxBatchDelay: {self.max_batch_delay_ms}\n"
                f"responseTimeout: {self.response_timeout_s}\nstartupTimeout: {self.startup_timeout_s}\n")


@dataclass
class Built:
    mar: Path
    tarball: Path
    runtime: str


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    if not cleaned:
        raise ValueError(f"model name {name!r} has no usable characters (letters, digits, _ and -)")
    return cleaned


def _copy_code(dst: Path) -> None:
    for package in CODE_PACKAGES:
        shutil.copytree(ROOT / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "handlers" / HANDLER_FILE, dst / HANDLER_FILE)


def _payload(checkpoint: Path, dst: Path, serving: dict) -> None:
    dst.mkdir(parents=True)
    for name in SERVING_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, dst / name)
    for weights in checkpoint.glob("*.safetensors"):
        shutil.copy2(weights, dst / weights.name)
    (dst / "serving.json").write_text(json.dumps(serving, indent=2), encoding="utf-8")
    _copy_code(dst)


def _run_archiver(name: str, payload: Path, config_file: Path, export: Path) -> Path:
    export.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "model_archiver.model_packaging", "--model-name", name, "--version", "1.0",
           "--handler", str(payload / HANDLER_FILE), "--extra-files", str(payload), "--config-file", str(config_file),
           "--archive-format", "no-archive", "--export-path", str(export), "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torch-model-archiver failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return export / name


def _zip(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())


def _tar(src: Path, dst: Path) -> None:
    with tarfile.open(dst, "w:gz") as tf:
        for path in sorted(src.rglob("*")):
            tf.add(path, arcname=path.relative_to(src).as_posix(), recursive=False)


def build(checkpoint: str | Path, out: str | Path, name: str | None = None,
          settings: ArchiveSettings = ArchiveSettings(), serving: dict | None = None) -> Built:
    """Check the checkpoint, stage it with the code, and write both archives into ``out``."""
    checkpoint, out = Path(checkpoint), Path(out)
    spec = check_checkpoint(checkpoint)
    name = safe_name(name or checkpoint.name)
    serving = serving or {"runtime": "torch", "reason": "ONNX export not requested"}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smtx-archive-") as tmp:
        tmp_path = Path(tmp)
        _payload(checkpoint, tmp_path / "payload", serving)
        config_file = tmp_path / "model-config.yaml"
        config_file.write_text(settings.model_config_yaml(), encoding="utf-8")
        staged = _run_archiver(name, tmp_path / "payload", config_file, tmp_path / "export")
        if not (staged / "model-config.yaml").is_file():  # keep it at the root, where TorchServe looks
            shutil.copy2(config_file, staged / "model-config.yaml")
        check_checkpoint(staged)  # what will be served passes the same checks
        mar, tarball = out / f"{name}.mar", out / "model.tar.gz"
        _zip(staged, mar.with_suffix(".mar.partial"))
        _tar(staged, tarball.with_suffix(".partial"))
        mar.with_suffix(".mar.partial").replace(mar)
        tarball.with_suffix(".partial").replace(tarball)
    log.info("%s model archived: %s and %s (runtime %s)", spec.task, mar, tarball, serving["runtime"])
    return Built(mar=mar, tarball=tarball, runtime=serving["runtime"])
