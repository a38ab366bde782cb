"""A fake SageMaker /opt/ml tree and ``python -m entrypoints train`` run on it (the training contract's tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def make_opt_ml(base: Path, data: Path, hps: dict[str, str]) -> Path:
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps))
    channel = base / "input" / "data" / "training"
    channel.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        channel.joinpath(f"{split}.csv").write_bytes((data / f"{split}.csv").read_bytes())
    (base / "model").mkdir()  # SageMaker mounts it, empty
    (base / "output").mkdir()
    return base


def run_train(base: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "entrypoints", "train"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
