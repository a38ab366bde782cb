"""Training: every (architecture x task) pair trains, saves and reloads to identical predictions; MiniLM learns."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from launcher.jobs.metrics import metric_definitions
from runtimes.torch_runtime import load_checkpoint
from tasks.predict import predict
from tests.helpers import EXAMPLES
from training.config import TrainConfig
from training.data import load_dataset
from training.metric_lines import parse_metric_lines
from training.run import train

pytestmark = pytest.mark.slow

#: (architecture, task, example folder, use_bbox) pairs the training smoke test covers
PAIRS = [(arch, task, task, False) for arch in ("bert", "distilbert", "longformer")
         for task in ("ner", "classif", "multilabel-classif", "regression", "pair-classif")]
PAIRS += [("layoutlm", "ner", "layoutlm-ner", True)]


def _hps(task: str, model: Path | str, use_bbox: bool, **extra: str) -> dict[str, str]:
    return {"task_name": task, "model_name": str(model), "use_bbox": str(use_bbox).lower(), "max_steps": "4",
            "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8", "eval_steps": "2", **extra}


@pytest.mark.parametrize("arch,task,folder,use_bbox", PAIRS, ids=[f"{a}-{t}" for a, t, _, _ in PAIRS])
def test_train_save_reload_predicts_the_same(arch, task, folder, use_bbox, tiny_model_dir, small_data, tmp_path):
    data = small_data(folder)
    config = TrainConfig.from_hyperparameters(_hps(task, tiny_model_dir(arch), use_bbox))
    result = train(config, data, tmp_path / "model")

    out = result.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "task_spec.json", "metrics.json", "test_predictions.jsonl",
            "README.md", "report", "tokenizer_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names), "only safetensors weights are written"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")], "staging directory left behind"

    spec, tokenizer, runner = load_checkpoint(out)
    assert spec.task == task and spec.model_type == arch and spec.use_bbox == use_bbox
    config_json = json.loads((out / "config.json").read_text())
    if task != "regression":
        assert [config_json["id2label"][str(i)] for i in range(len(spec.labels))] == list(spec.labels)

    before = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    records = load_dataset(data, task, use_bbox).test
    after = predict(spec, tokenizer, runner, records)
    assert len(after) == len(before) == len(records)
    for b, a in zip(before, after):
        assert a["pred"] == b["pred"]
        assert a.get("proba") == pytest.approx(b.get("proba"), abs=1e-9)
    if task == "ner":
        for record, pred in zip(records, after):
            assert len(pred["pred"]) == len(record.text.split()), "every word gets exactly one label"


def test_ner_long_texts_use_windows_in_training_and_evaluation(tiny_model_dir, small_data, tmp_path):
    """max_seq_length far below the text length: nothing is dropped, every word still gets a prediction."""
    data = small_data("ner")
    hps = _hps("ner", tiny_model_dir("bert"), False, max_seq_length="8", stride="2")
    config = TrainConfig.from_hyperparameters(hps)
    out = train(config, data, tmp_path / "model").output
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert all(len(r["pred"]) == len(r["text"].split()) == len(r["proba"]) for r in rows)


def test_metrics_are_logged_as_name_value_lines(tiny_model_dir, small_data, tmp_path, caplog):
    caplog.set_level("INFO")
    config = TrainConfig.from_hyperparameters(_hps("classif", tiny_model_dir("bert"), False))
    train(config, small_data("classif"), tmp_path / "model")
    lines = [r.getMessage() for r in caplog.records]
    for name in ("train_loss", "dev_accuracy", "test_accuracy", "test_f1_macro"):
        assert any(line.startswith(f"{name}=") and line.split(";")[0].split("=")[1].replace(".", "").isdigit()
                   for line in lines), name
    # a real run: every SageMaker metric definition matches a line, and nothing is logged without one
    definitions = {d["Name"]: d["Regex"] for d in metric_definitions("classif")}
    assert [n for n, regex in definitions.items() if not any(re.search(regex, line) for line in lines)] == []
    assert {n for line in lines for n in parse_metric_lines(line)} <= set(definitions)


def test_embedded_minilm_overfits_a_small_dataset(tmp_path):
    """Learning really happens: the embedded pretrained MiniLM reaches near-perfect dev scores."""
    config = TrainConfig.from_hyperparameters({"task_name": "classif", "max_steps": "30", "learning_rate": "1e-4",
                                               "per_device_train_batch_size": "16", "max_seq_length": "48"})
    result = train(config, EXAMPLES / "classif", tmp_path / "model")
    assert result.metrics["dev"]["accuracy"] >= 0.9
    assert result.metrics["test"]["f1_macro"] >= 0.9
    assert (result.output / "report" / "confusion_matrix.png").stat().st_size > 1000


def test_best_weights_are_kept_in_memory_unless_a_run_can_resume(tiny_model_dir, small_data, tmp_path, monkeypatch):
    """Without a checkpoint folder nothing is written during training, and the model kept is the one a run that
    writes checkpoints (the Trainer's load_best_model_at_end) keeps: the same dev scores, the same predictions."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # a learning rate this high makes the dev score move between evaluations, so "best" is not simply "last"
    config = TrainConfig.from_hyperparameters(_hps("classif", tiny_model_dir("bert"), False, max_steps="8",
                                                   eval_steps="1", learning_rate="0.05"))
    data = small_data("classif")
    in_memory = train(config, data, tmp_path / "memory", keep_checkpoints=True)
    scratch = [p for p in tmp_path.iterdir() if p.name.startswith("smtx-checkpoints-")]
    assert len(scratch) == 1 and not list(scratch[0].iterdir()), "no checkpoint is written when none can be resumed"
    on_disk = train(config, data, tmp_path / "disk", checkpoint_dir=tmp_path / "checkpoints", keep_checkpoints=True)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("checkpoint-")]

    history = json.loads((in_memory.output / "trainer_log.json").read_text())
    evals = [e["eval_accuracy"] for e in history if "eval_accuracy" in e]
    assert len(evals) == 8 and in_memory.metrics["dev"]["accuracy"] == pytest.approx(max(evals)), evals
    print("dev accuracy per evaluation:", evals)
    assert in_memory.metrics["dev"] == on_disk.metrics["dev"]
    rows = [(run.output / "test_predictions.jsonl").read_text() for run in (in_memory, on_disk)]
    assert rows[0] == rows[1]
