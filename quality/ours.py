"""Our side: ``python -m training`` exactly as ``make train`` runs it, with only the shared settings given."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quality.recipe import Outcome
from quality.served import served_check
from quality.settings import Setting
from tasks.kinds import task_kind
from training.config import EMBEDDED_MODEL
from training.data import Dataset

ROOT = Path(__file__).resolve().parents[1]


class TrainingFailed(RuntimeError):
    """``python -m training`` exited non-zero; the message carries the last lines it printed."""


def command(task: str, data_dir: Path, out: Path, setting: Setting, model: str = EMBEDDED_MODEL) -> list[str]:
    """The training command: every other hyperparameter keeps its default (the embedded model is training's own
    default, so it is not named)."""
    named = [] if model == EMBEDDED_MODEL else [f"model_name={model}"]
    return [sys.executable, "-m", "training", "--data", str(data_dir), "--out", str(out), f"task_name={task}",
            *named, f"max_steps={setting.steps}", f"per_device_train_batch_size={setting.batch_size}",
            f"max_seq_length={setting.max_seq_length}", f"learning_rate={setting.learning_rate}",
            f"seed={setting.seed}"]


def run(task: str, data_dir: Path, data: Dataset, setting: Setting, check_served: bool = False,
        model: str = EMBEDDED_MODEL) -> Outcome:
    """Train in a fresh process, then score its test predictions (what serving would answer); ``check_served``:
    also archive and serve the checkpoint and score what the server answers (quality/served.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    scratch = Path(tempfile.mkdtemp(prefix="quality-ours-"))
    try:
        out = scratch / "model"
        started = time.perf_counter()
        proc = subprocess.run(command(task, data_dir, out, setting, model), cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise TrainingFailed(f"python -m training exited {proc.returncode}:\n{tail}")
        info = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["info"]
        labels = json.loads((out / "config.json").read_text(encoding="utf-8"))["id2label"]
        rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        names = [labels[str(i)] for i in range(len(labels))]
        preds: list[dict[str, Any]] = [{"pred": row["pred"]} for row in rows]
        gold = [r.label for r in data.test]
        metrics = task_kind(task).score(names, gold, preds)
        served = served_check(task, out, data_dir, gold, names, metrics, data.test) if check_served else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # ~90 MB of weights per run: keep only the figures
    return Outcome(metrics=metrics, dropped_words=0, train_seconds=float(info["train_seconds"]), wall_seconds=wall,
                   served=served)
