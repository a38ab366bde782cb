"""Our side: ``python -m training`` exactly as ``make train`` runs it, with only the shared settings given; and
``ours-fp32``, the same with mixed_precision=no, on a CPU where our default trains in bf16 autocast, so that the
report shows what bf16 costs in points (training.device.CPU_BF16_KINDS is settled by it)."""
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
from runtimes.cpu import read_cpu
from tasks.kinds import task_kind
from training.config import EMBEDDED_MODEL
from training.data import Dataset
from training.device import auto_bf16_on_cpu

ROOT = Path(__file__).resolve().parents[1]
#: our variants: the hyperparameters each gives on top of the shared settings (ours: none, our defaults)
VARIANTS: dict[str, dict[str, str]] = {"ours": {}, "ours-fp32": {"mixed_precision": "no"}}


class TrainingFailed(RuntimeError):
    """``python -m training`` exited non-zero; the message carries the last lines it printed."""


def variants_here() -> tuple[str, ...]:
    """Our variants worth running on this machine: ours-fp32 only where our default trains in bf16 (on any other
    CPU it would train the very same model twice). Read without torch: a job limits its threads before torch."""
    cpu = read_cpu()
    return tuple(VARIANTS) if auto_bf16_on_cpu(cpu.kind, cpu.native_bf16) else ("ours",)


def command(task: str, data_dir: Path, out: Path, setting: Setting, model: str = EMBEDDED_MODEL,
            variant: str = "ours") -> list[str]:
    """The training command: every other hyperparameter keeps its default (the embedded model is training's own
    default, so it is not named)."""
    named = [] if model == EMBEDDED_MODEL else [f"model_name={model}"]
    named += [f"{name}={value}" for name, value in VARIANTS[variant].items()]
    return [sys.executable, "-m", "training", "--data", str(data_dir), "--out", str(out), f"task_name={task}",
            *named, f"max_steps={setting.steps}", f"per_device_train_batch_size={setting.batch_size}",
            f"max_seq_length={setting.max_seq_length}", f"learning_rate={setting.learning_rate}",
            f"seed={setting.seed}"]


def run(task: str, data_dir: Path, data: Dataset, setting: Setting, check_served: bool = False,
        model: str = EMBEDDED_MODEL, variant: str = "ours") -> Outcome:
    """Train in a fresh process, then score its test predictions (what serving would answer); ``check_served``:
    also archive and serve the checkpoint and score what the server answers (quality/served.py). The outcome
    also carries training's own dev scores and the precision it trained in (metrics.json)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    scratch = Path(tempfile.mkdtemp(prefix="quality-ours-"))
    try:
        out = scratch / "model"
        started = time.perf_counter()
        proc = subprocess.run(command(task, data_dir, out, setting, model, variant), cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise TrainingFailed(f"python -m training exited {proc.returncode}:\n{tail}")
        recorded = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        info = recorded["info"]
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
                   served=served, dev_metrics=recorded["dev"], precision=info["device"]["precision"])
