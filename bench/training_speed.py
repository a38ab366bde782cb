"""Training throughput: `make train` against a plain Trainer set up the way the transformers example scripts
do (tokenise with truncation, DataCollatorWithPadding, no evaluation during training) -- same model, data,
batch size and steps. The model is the embedded MiniLM unless the job names another (``"model"``: training's
``model_name``, a local folder from ``make bench --model``). Ours trains in the job's ``"precision"`` (training's
``mixed_precision``: auto, what ``make train`` does, unless the job says; ``no`` is fp32, ``bf16`` autocast); the
plain Trainer in fp32, as the examples run on the CPU."""
from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: the training rows of `make bench`, label -> what its job adds: ours as `make train` runs it
#: (mixed_precision=auto), the plain Trainer (fp32), and ours in fp32 and in bf16 autocast, the pair whose ratio
#: settles training.device.CPU_BF16_KINDS
ROWS: dict[str, dict[str, str]] = {
    "training/ours": {"impl": "ours"},
    "training/plain": {"impl": "plain"},
    "training/ours-fp32": {"impl": "ours", "precision": "no"},
    "training/ours-bf16": {"impl": "ours", "precision": "bf16"},
}


def _model_name(job: dict[str, Any]) -> str:
    from training.config import EMBEDDED_MODEL

    return str(job.get("model", EMBEDDED_MODEL))


def _ours(job: dict[str, Any], data: Path) -> dict[str, Any]:
    from training.config import TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters({
        "task_name": "classif", "model_name": _model_name(job), "max_steps": str(job["steps"]),
        "per_device_train_batch_size": str(job["batch"]),
        "max_seq_length": "128", "learning_rate": "5e-5", "mixed_precision": job.get("precision", "auto")})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train(config, data, Path(tmp) / "model")
        wall = time.perf_counter() - started
        output = result.output
        if output is None:
            raise RuntimeError("training wrote no model (only another rank of a distributed run does that)")
        info = json.loads((output / "metrics.json").read_text())["info"]
        history = json.loads((output / "trainer_log.json").read_text())
    # the Trainer's samples/s includes its evaluations on dev (ours picks the best model by them; the plain
    # set-up evaluates nothing): the steps alone are the train time less the evaluations' own runtime
    evals = sum(e.get("eval_runtime", 0.0) for e in history)
    samples = info["train_samples_per_second"] * info["train_seconds"]
    return {"train_samples_per_second": info["train_samples_per_second"], "wall_seconds": wall,
            "step_samples_per_second": samples / (info["train_seconds"] - evals), "eval_seconds": evals,
            "test_accuracy": result.metrics["test"]["accuracy"], "base_model": info["base_model"],
            "precision": info["device"]["precision"], "cpu_kind": info["device"]["cpu_kind"]}


class _Rows:
    def __init__(self, encodings: list[dict[str, Any]]) -> None:
        self.encodings = encodings

    def __len__(self) -> int:
        return len(self.encodings)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.encodings[i]


def _plain(job: dict[str, Any], data: Path) -> dict[str, Any]:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from training.run import resolve_model

    path = resolve_model(_model_name(job))
    with open(data / "train.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    labels = sorted({r["labels"].strip('"') for r in rows})
    tokenizer = AutoTokenizer.from_pretrained(path)
    encodings = []
    for row in rows:
        enc = tokenizer(row["text"], truncation=True, max_length=128)
        encodings.append({**enc, "labels": labels.index(row["labels"].strip('"'))})
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=job["steps"], per_device_train_batch_size=job["batch"],
                                 learning_rate=5e-5, report_to=[], save_strategy="no", eval_strategy="no",
                                 use_cpu=True, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=_Rows(encodings),
                          data_collator=DataCollatorWithPadding(tokenizer))
        started = time.perf_counter()
        metrics = trainer.train().metrics
        wall = time.perf_counter() - started
    return {"train_samples_per_second": metrics["train_samples_per_second"], "wall_seconds": wall,
            "step_samples_per_second": metrics["train_samples_per_second"], "base_model": model.name_or_path}


def run(job: dict[str, Any]) -> dict[str, Any]:
    import resource

    import torch

    torch.set_num_threads(job.get("threads", 2))
    data = ROOT / "examples" / "data" / "classif"
    result = (_ours if job["impl"] == "ours" else _plain)(job, data)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
