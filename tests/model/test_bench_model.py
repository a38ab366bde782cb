"""``make bench --model PATH``: what the folder is taken for, the one line a bad folder gets, and the wiring of a
tiny random model through training, archiving, one benchmark job and the report (no timing is asserted)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import _write, prepare, run_job, work_dir
from bench.models import EMBEDDED, ModelError, resolve
from bench.report import flops_per_record, markdown
from tests.helpers import ROOT


def _bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path):
    proc = _bench("--model", str(tmp_path / "nowhere"), "--quick", "--work", str(tmp_path / "w"),
                  "--results", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --model {tmp_path / 'nowhere'}: no such folder; expected a local save_pretrained folder or a "
        "checkpoint of ours (hub ids are not fetched)"]
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


def test_a_folder_without_config_json_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0")
    proc = _bench("--model", str(tmp_path), "--quick", "--work", str(tmp_path / "w"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --model {tmp_path}: {tmp_path} has no config.json; expected a save_pretrained folder or a "
        "checkpoint of ours"]


def test_a_sentence_transformers_folder_with_the_transformer_inside_names_it(tmp_path):
    modules = [{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        resolve(str(tmp_path))
    assert str(info.value).endswith(f"(a sentence-transformers folder: name its transformer, "
                                    f"{tmp_path / '0_Transformer'})")


@pytest.mark.parametrize("config, reason", [("{not json", "cannot be read"), ('{"hidden_size": 8}', "no model_type"),
                                            ("[]", "no model_type")])
def test_a_config_json_without_a_model_type_is_refused(tmp_path, config, reason):
    (tmp_path / "config.json").write_text(config, encoding="utf-8")
    with pytest.raises(ModelError, match=reason):
        resolve(str(tmp_path))


def test_a_file_is_not_a_model_folder(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    with pytest.raises(ModelError, match="not a folder"):
        resolve(str(tmp_path / "config.json"))


def test_a_checkpoint_whose_records_are_two_texts_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    spec = {"task": "pair-classif", "model_type": "bert", "labels": ["no", "yes"], "max_seq_length": 64,
            "stride": 16, "schema_version": 1}
    (tmp_path / "task_spec.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ModelError, match="pair-classif checkpoint; the bench sends single plain texts"):
        resolve(str(tmp_path))


def test_no_model_is_the_embedded_minilm():
    model = resolve(None)
    assert model.embedded and model.label == EMBEDDED and model.model_type == "bert" and model.task is None
    assert (model.path / "config.json").is_file()
    assert resolve(EMBEDDED) == model
    # the MiniLM's cache is where it always was, so earlier trained models are reused
    assert work_dir(model, "ner", quick=True, root=Path("/w")) == Path("/w/quick/ner")


def test_a_base_model_is_named_and_cached_apart(tiny_model_dir, tmp_path):
    model = resolve(str(tiny_model_dir("bert")))
    assert not model.embedded and model.task is None and model.model_type == "bert"
    assert model.label == f"bert (bert, base model, {tiny_model_dir('bert')})"
    slug = model.slug()
    assert work_dir(model, "classif", quick=True, root=tmp_path) == tmp_path / "models" / slug / "quick" / "classif"
    # an edited folder is another model: its cached fine-tuned checkpoints are not reused
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in tiny_model_dir("bert").iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    before = resolve(str(copy)).slug()
    (copy / "tiny.json").write_text('{"model_type": "bert", "edited": true}', encoding="utf-8")
    assert resolve(str(copy)).slug() != before and before.startswith("copy-")


def _results(**extra) -> dict:
    runs = {"gemm": {"gflops": 100.0}}
    for task in extra.get("tasks", ("classif", "ner")):
        runs[f"{task}/direct/torch"] = {"records_per_s": 10.0}
        runs[f"{task}/served/torch"] = {"records_per_s": 9.0}
    return {"runs": runs, **extra}


def test_the_report_names_the_model_and_covers_only_its_tasks():
    table = markdown(_results(model="mine (bert, checkpoint for ner, /m)", tasks=["ner"]))
    assert table.startswith("Model: mine (bert, checkpoint for ner, /m)\n\n| ratio (same run) |")
    assert "| ner: our stack / raw forward (torch) | 0.90x |" in table
    assert "classif:" not in table and "(ner, records/s)" in table


def test_a_results_file_from_before_models_reads_as_the_minilm_on_classif_and_ner():
    table = markdown(_results())
    assert table.startswith("| ratio (same run) |")
    assert "| classif: our stack / raw forward (torch) | 0.90x |" in table
    assert "| ner: our stack / raw forward (torch) | 0.90x |" in table


def test_the_results_file_is_named_after_the_model(tiny_model_dir, tmp_path):
    model = resolve(str(tiny_model_dir("bert")))
    args = argparse.Namespace(results=tmp_path, quick=True)
    assert _write({"runs": {}, "model": model.label}, args, model) == 0
    (found,) = tmp_path.glob("*.json")
    assert found.name.endswith(f"-{model.slug()}-quick.json")
    assert json.loads(found.read_text())["model"] == model.label
    assert found.with_suffix(".md").read_text().startswith(f"Model: {model.label}")


@pytest.mark.slow
def test_a_tiny_base_model_is_fine_tuned_archived_and_benched(tiny_model_dir, tmp_path):
    """The wiring end to end at the bench's smallest sizes (quick: 10 steps; 2 texts): the checkpoint is trained
    from the folder named, every runtime is archived, one direct job and the FLOPs run on it; then the fine-tuned
    checkpoint itself, named as --model, is benched as it is, with nothing trained again."""
    base = resolve(str(tiny_model_dir("bert")))
    stores = prepare("classif", True, base, tmp_path)
    checkpoint = stores["checkpoint"]
    assert checkpoint == work_dir(base, "classif", True, tmp_path) / "checkpoint"
    info = json.loads((checkpoint / "metrics.json").read_text())["info"]
    assert info["base_model"] == str(tiny_model_dir("bert"))
    assert {"torch", "onnx"} <= set(stores), stores
    result = run_job({"label": "classif/direct/torch", "kind": "direct", "n": 2,
                      "model_dir": str(stores["torch"] / "extracted")})
    assert "error" not in result and result["records_per_s"] > 0
    flops = flops_per_record(checkpoint, 2)
    assert flops["encoder_weights"] == 2 * (4 * 32 * 32 + 2 * 32 * 64)  # the tiny config: 2 layers, 32 wide, 64 FF

    ours = resolve(str(checkpoint))
    assert ours.task == "classif" and ours.label == f"checkpoint (bert, checkpoint for classif, {checkpoint})"
    again = prepare("classif", True, ours, tmp_path / "second")
    assert again["checkpoint"] == checkpoint and not (tmp_path / "second" / "models" / ours.slug() / "classif" /
                                                       "checkpoint").exists()
    assert (again["torch"] / "classif.mar").is_file()


@pytest.mark.slow
def test_the_training_rows_train_the_model_named(tiny_model_dir):
    for impl in ("ours", "plain"):
        result = run_job({"label": f"training/{impl}", "kind": "training", "impl": impl, "steps": 1, "batch": 4,
                          "model": str(tiny_model_dir("bert"))})
        assert "error" not in result and result["train_samples_per_second"] > 0, result
        assert result["base_model"] == str(tiny_model_dir("bert"))  # what training itself says it loaded


# make quality --model: the same folder rules, and the model reaches every variant


def _quality(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "quality", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_quality_refuses_a_missing_folder_before_any_download(tmp_path):
    proc = _quality("--quick", "--model", str(tmp_path / "nowhere"), "--work", str(tmp_path / "w"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: --model {tmp_path / 'nowhere'}: no such folder; expected a local save_pretrained folder or a "
        "checkpoint of ours (hub ids are not fetched)")
    assert not (tmp_path / "w").exists()


def test_quality_refuses_a_fine_tuned_checkpoint(tmp_path):
    from quality.__main__ import base_model

    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    spec = {"task": "classif", "model_type": "bert", "labels": ["a", "b"], "schema_version": 1}
    (tmp_path / "task_spec.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ValueError, match="a fine-tuned classif checkpoint of ours"):
        base_model(str(tmp_path))


def test_quality_plans_every_variant_on_the_model_named(tiny_model_dir, tmp_path):
    from quality import jobs, ours
    from quality.__main__ import base_model
    from quality.report import markdown as quality_markdown
    from quality.settings import Setting

    model = base_model(str(tiny_model_dir("bert")))
    setting = Setting(2, 8, 32, 5e-5, 1)
    planned = jobs.plan("c", "classif", tmp_path, [setting], ("ours", "recipe"), model.model_name)
    assert {job.model for job in planned} == {str(tiny_model_dir("bert"))}
    command = ours.command("classif", tmp_path, tmp_path / "out", setting, planned[0].model)
    assert f"model_name={tiny_model_dir('bert')}" in command
    # the embedded model is training's own default: its command stays as it was
    assert not any(a.startswith("model_name=") for a in ours.command("classif", tmp_path, tmp_path, setting))
    corpora = {"c": {"task": "classif", "setting": {"steps": 2, "max_seq_length": 32}}}
    shared = {"model": model.label, "batch_size": 8, "learning_rate": 5e-5, "seeds": [1], "jobs": 1,
              "threads_per_job": 2}
    assert quality_markdown({}, corpora, shared).splitlines()[0].endswith(f"Model: {model.label}.")
