"""ONNX Runtime serves wherever it answers what torch answers: export, parity gate, fallbacks, int8 gate, handler.

Every checkpoint here is a real one (a tiny random model trained for two steps), archived by ``build`` and read
back from the extracted ``model.tar.gz``, so what is checked is what an endpoint would load.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from archive.__main__ import main as archive_main
from archive.build import Built, RuntimeOptions, build
from archive.quantize import QuantizationRefused, quantization_gate, refusal
from handlers.service import InferenceService, Request, Settings
from runtimes.onnx_runtime import OnnxRunner
from runtimes.torch_runtime import load_checkpoint
from tasks.families import family_for
from tasks.fields import Record
from tasks.predict import predict
from tasks.spec import TaskSpec
from training.data import load_dataset

TOLERANCE = 1e-5
#: (architecture, task, example folder, use_bbox): each head kind once (LayoutLM NER covers token heads and
#: windows; a BERT NER case would repeat it for another training run in a file kept under 90 s), and BERT
#: pair-classif, whose inputs carry real segment ids (token_type_ids 1 on the second text)
ONNX_CASES = [("bert", "classif", "classif", False), ("distilbert", "multilabel-classif", "multilabel-classif", False),
              ("bert", "regression", "regression", False), ("bert", "pair-classif", "pair-classif", False),
              ("layoutlm", "ner", "layoutlm-ner", True)]
_CHECKPOINTS: dict[tuple[str, str], Path] = {}


@pytest.fixture(scope="module")
def trained(tiny_model_dir, small_data, tmp_path_factory):
    """``trained(arch, task, folder, use_bbox)`` -> a checkpoint trained for two steps (once per session)."""
    from training.config import TrainConfig
    from training.run import train

    def get(arch: str, task: str, folder: str, use_bbox: bool) -> Path:
        if (arch, task) not in _CHECKPOINTS:
            config = TrainConfig.from_hyperparameters({
                "task_name": task, "model_name": str(tiny_model_dir(arch)), "use_bbox": str(use_bbox).lower(),
                "max_steps": "2", "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8",
                "eval_steps": "2"})
            out = tmp_path_factory.mktemp(f"onnx-{arch}-{task}") / "model"
            _CHECKPOINTS[(arch, task)] = train(config, small_data(folder), out).output
        return _CHECKPOINTS[(arch, task)]

    return get


def extract(built: Built, dst: Path) -> Path:
    """``model.tar.gz`` unpacked as SageMaker lays it out."""
    dst.mkdir(parents=True)
    with tarfile.open(built.tarball) as tf:
        tf.extractall(dst, filter="data")
    return dst


def records_of(small_data, task: str, folder: str, use_bbox: bool) -> list[Record]:
    return load_dataset(small_data(folder), task, use_bbox).test




def assert_same(task: str, got: list[dict], expected: list[dict]) -> None:
    """Same labels; every probability (the value itself for regression) within TOLERANCE."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if task == "regression":
            assert g["pred"] == pytest.approx(e["pred"], abs=TOLERANCE)
            continue
        assert g["pred"] == e["pred"]
        assert g["proba"] == pytest.approx(e["proba"], abs=TOLERANCE)
        scores_g, scores_e = g.get("scores"), e.get("scores")
        if isinstance(scores_e, list):  # NER: one dict per word
            for sg, se in zip(scores_g, scores_e):
                assert (sg is None and se is None) or sg == pytest.approx(se, abs=TOLERANCE)
        elif scores_e is not None:
            assert scores_g == pytest.approx(scores_e, abs=TOLERANCE)


def serving_json(extracted: Path) -> dict:
    return json.loads((extracted / "serving.json").read_text(encoding="utf-8"))


# -- the architectures that export ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_archives(trained, small_data, tmp_path_factory):
    """``onnx_archives(case)`` -> (checkpoint, extracted archive), built with the default (ONNX) runtime."""
    made: dict[tuple, tuple[Path, Path]] = {}

    def get(case: tuple) -> tuple[Path, Path]:
        if case not in made:
            arch, task, folder, use_bbox = case
            checkpoint = trained(*case)
            root = tmp_path_factory.mktemp(f"archive-{arch}-{task}")
            options = RuntimeOptions(data=small_data(folder) if use_bbox else None)
            built = build(checkpoint, root / "out", runtime=options)
            made[case] = checkpoint, extract(built, root / "extracted")
        return made[case]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("case", ONNX_CASES, ids=[f"{a}-{t}" for a, t, _, _ in ONNX_CASES])
def test_onnx_is_chosen_and_predicts_what_torch_predicts(onnx_archives, small_data, case):
    arch, task, folder, use_bbox = case
    checkpoint, extracted = onnx_archives(case)
    serving = serving_json(extracted)
    assert serving["runtime"] == "onnx" and serving["onnx_file"] == "model.onnx", serving
    assert (extracted / "model.onnx").is_file()
    figures = serving["parity"]
    assert figures["passed"] and figures["label_agreement"] == 1.0 and figures["max_abs_diff"] <= TOLERANCE
    # BERT and DistilBERT serve the fused graph (the one the parity gate passed); LayoutLM the plain export
    fusable = family_for(arch).onnx_fusion is not None
    assert serving["graph"]["fused"] == fusable, serving["graph"]
    if fusable:
        ops = {node.op_type for node in onnx.load(str(extracted / "model.onnx")).graph.node}
        assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization"} <= ops, ops
    else:
        assert serving["graph"]["reason"].startswith(f"no fused graph for {arch}")
    assert figures["records"] == 12 + figures["length_probes"]
    spec, tokenizer, torch_runner = load_checkpoint(checkpoint)
    records = records_of(small_data, task, folder, use_bbox)
    expected = predict(spec, tokenizer, torch_runner, records, all_scores=True)
    got = predict(spec, tokenizer, OnnxRunner(extracted / "model.onnx", intra_op_threads=1), records,
                  all_scores=True, max_batch_size=3)
    assert_same(task, got, expected)


@pytest.mark.slow
@pytest.mark.parametrize("case", [ONNX_CASES[0], ONNX_CASES[-1]], ids=["bert-classif", "layoutlm-ner"])
def test_the_service_of_an_onnx_archive_answers_what_torch_answers(onnx_archives, small_data, case):
    arch, task, folder, use_bbox = case
    checkpoint, extracted = onnx_archives(case)
    records = [{"text": r.text, **({"bbox": [list(b) for b in r.bbox]} if r.bbox else {})}
               for r in records_of(small_data, task, folder, use_bbox)]
    body = json.dumps({"data": [{**r, "all_scores": True} for r in records]}).encode()
    answers = {}
    for name, path in (("onnx", extracted), ("torch", checkpoint)):  # a checkpoint without serving.json: torch
        # ONNX Runtime's fp32 path: the one this test compares with torch (tests/model/test_precisions.py: the rest)
        service = InferenceService(path, Settings(precision="onnx-fp32"))
        assert service.runtime == name
        if name == "onnx":
            assert isinstance(service.runner, OnnxRunner)
        response = service.handle([Request(body, {"content-type": "application/json"})])[0]
        assert response.status == 200, response.body
        answers[name] = json.loads(response.body)["predictions"]
    assert_same(task, answers["onnx"], answers["torch"])


def test_the_runner_names_a_missing_input(onnx_archives):
    _, extracted = onnx_archives(ONNX_CASES[0])
    runner = OnnxRunner(extracted / "model.onnx")
    assert runner.input_names == ("input_ids", "attention_mask", "token_type_ids")
    ids = np.array([[2, 10, 3]], dtype=np.int32)  # not int64: the runner casts
    logits = runner({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    assert logits.shape == (1, 4) and logits.dtype == np.float32
    with pytest.raises(KeyError, match=r"needs inputs \['token_type_ids'\]"):
        runner({"input_ids": ids, "attention_mask": np.ones_like(ids)})


# -- fallbacks to torch -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_longformer_records_its_runtime_and_why(trained, tmp_path):
    checkpoint = trained("longformer", "classif", "classif", False)
    extracted = extract(build(checkpoint, tmp_path / "out"), tmp_path / "extracted")
    serving = serving_json(extracted)
    assert serving["reason"]
    assert not (serving["graph"] or {}).get("fused")  # never fused: its sliding-window attention has no fusion
    if serving["runtime"] == "onnx":
        assert serving["parity"]["passed"] and (extracted / serving["onnx_file"]).is_file()
        return
    # the sliding-window attention, traced at one padded length, breaks at another (tiny window of 8 here)
    assert serving["reason"].startswith(("ONNX export or run failed", "ONNX differs from torch")), serving
    assert serving["onnx_file"] is None and not list(extracted.glob("*.onnx"))


@pytest.mark.slow
def test_a_boxes_model_without_data_keeps_torch_and_says_why(trained, tmp_path):
    checkpoint = trained("layoutlm", "ner", "layoutlm-ner", True)
    built = build(checkpoint, tmp_path / "out")
    assert built.runtime == "torch"
    assert "--data" in built.serving.reason and "boxes" in built.serving.reason


@pytest.mark.slow
def test_runtime_torch_forces_torch_from_the_command_line(trained, tmp_path, capsys):
    checkpoint = trained(*ONNX_CASES[0])
    code = archive_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"), "--runtime", "torch"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "runtime: torch" in printed and "reason: runtime 'torch' was asked for" in printed
    with tarfile.open(tmp_path / "out" / "model.tar.gz") as tf:
        names = tf.getnames()
        serving = json.load(tf.extractfile("serving.json"))
    assert serving["runtime"] == "torch" and not any(n.endswith(".onnx") for n in names)


# -- int8 ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_int8_is_served_when_it_passes_the_gate(trained, small_data, tmp_path):
    checkpoint = trained(*ONNX_CASES[0])
    options = RuntimeOptions(quantize="int8", data=small_data("classif"), quantize_tolerance=1.0)
    extracted = extract(build(checkpoint, tmp_path / "out", runtime=options), tmp_path / "extracted")
    serving = serving_json(extracted)
    assert serving["runtime"] == "onnx" and serving["onnx_file"] == "model.int8.onnx"
    # the fp32 graph stays: it is a gated path too, which a worker on a CPU without VNNI serves
    assert sorted(p.name for p in extracted.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]
    # quantized after fusion, as ONNX Runtime recommends: the fused attention became QAttention
    assert serving["graph"]["fused"]
    assert "QAttention" in {node.op_type for node in onnx.load(str(extracted / "model.int8.onnx")).graph.node}
    gate = serving["quantization"]
    assert gate["type"] == "int8" and gate["metric"] == "dev_f1_macro" and gate["passed"] and gate["dev_records"] == 12
    service = InferenceService(extracted, Settings(precision="int8"))
    assert (service.runtime, service.serving["precision"], service.serving["file"]) == ("onnx", "int8",
                                                                                       "model.int8.onnx")


@pytest.mark.slow
def test_int8_refused_by_the_gate_says_by_how_much_and_writes_nothing(trained, small_data, tmp_path):
    checkpoint = trained(*ONNX_CASES[2])  # regression: the relative MSE rule
    options = RuntimeOptions(quantize="int8", data=small_data("regression"), quantize_tolerance=-1.0)
    with pytest.raises(QuantizationRefused) as info:
        build(checkpoint, tmp_path / "out", runtime=options)
    figures = info.value.figures
    assert figures["metric"] == "dev_mse" and not figures["passed"] and figures["rule"].startswith("relative")
    assert "int8 quantization refused: dev_mse" in str(info.value) and "missed by" in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_int8_without_onnx_is_refused_on_the_command_line(trained, small_data, tmp_path, capsys, monkeypatch):
    def failing_export(*args, **kwargs):
        raise RuntimeError("exporter broke\nsecond line")

    monkeypatch.setattr("archive.build.export_onnx", failing_export)
    code = archive_main(["--checkpoint", str(trained(*ONNX_CASES[0])), "--out", str(tmp_path / "out"),
                         "--quantize", "int8", "--data", str(small_data("classif"))])
    assert code == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: int8 quantization refused: it needs ONNX, which was not chosen: ONNX export or run failed: "
        "RuntimeError: exporter broke")
    assert not (tmp_path / "out").exists()


def test_quantize_needs_data_on_the_command_line(tmp_path, capsys):
    code = archive_main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "out"), "--quantize", "int8"])
    assert code == 2
    assert "quantize='int8' needs data" in capsys.readouterr().err


def _classif(labels: list[str]) -> list[dict]:
    return [{"pred": label} for label in labels]


def test_the_gate_rule_is_absolute_for_f1_and_relative_for_mse():
    spec = TaskSpec(task="classif", model_type="bert", labels=("a", "b"))
    dev = [Record(text="x", label=label) for label in "aabb"]
    figures = quantization_gate(spec, dev, _classif(list("aabb")), _classif(list("aaba")), tolerance=0.005)
    assert figures["fp32"] == 1.0 and figures["loss"] == pytest.approx(1.0 - figures["int8"]) and not figures["passed"]
    assert f"missed by {figures['loss'] - 0.005:.4f}" in refusal(figures)
    spec = TaskSpec(task="regression", model_type="bert")
    dev = [Record(text="x", label=v) for v in (0.0, 1.0)]
    fp32, int8 = [{"pred": 0.1}, {"pred": 0.9}], [{"pred": 0.1}, {"pred": 0.9004}]  # mse 0.0100 -> 0.0099...
    assert quantization_gate(spec, dev, fp32, int8, tolerance=0.005)["passed"]  # int8 better: a negative loss
    worse = [{"pred": 0.1}, {"pred": 0.8999}]  # mse +0.1 %: within 0.5 %
    figures = quantization_gate(spec, dev, fp32, worse, tolerance=0.005)
    assert figures["passed"] and figures["loss"] == pytest.approx(0.001, rel=0.01)
    figures = quantization_gate(spec, dev, fp32, [{"pred": 0.1}, {"pred": 0.89}], tolerance=0.005)  # +10.5 %
    assert not figures["passed"] and "10.50%" in refusal(figures)
