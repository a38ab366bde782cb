"""The fused ONNX graph: BERT-style models get ONNX Runtime's fused operators, the others the plain export.

Tiny random models, exported directly (no training): the fused graph must answer what torch answers through the
serving path, at every batch size and padded width, and a fusion that fails must leave the plain graph.
"""
from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from archive.onnx_export import export_onnx
from archive.parity import length_probes, parity, run_check
from archive.quantize import quantize_int8
from runtimes.onnx_runtime import OnnxRunner
from runtimes.torch_runtime import TorchRunner, load_base_tokenizer
from tasks.batching import pad
from tasks.encode import encode
from tasks.families import family_for
from tasks.fields import Record
from tasks.predict import predict
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import inputs_of

TOLERANCE = 1e-5
TEXTS = ["the team won", "alice martin joined acme corp last year and opened a new office in paris",
         "sales grew", "the board met yesterday while the weather was terrible and nobody expected the meeting "
         "to end so early", "good", "bob chen flew to tokyo on monday"]
#: the fused operators of a BERT graph (RoBERTa's position ids keep its embeddings unfused)
FUSED_OPS = {"Attention", "SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"}


def model_and_spec(tiny_model_dir, arch: str, task: str):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    folder = tiny_model_dir(arch)
    head = AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification
    model = head.from_pretrained(str(folder), num_labels=3).eval()
    labels = ("O", "B-ORG", "I-ORG") if task == "ner" else ("a", "b", "c")
    spec = TaskSpec(task=task, model_type=arch, labels=labels, max_seq_length=32, stride=8,
                    use_bbox=family_for(arch).bbox)
    return model, load_base_tokenizer(folder)[0], spec


def records(spec: TaskSpec) -> list[Record]:
    def boxes(text: str):
        return [[10 * i, 10, 10 * i + 8, 20] for i in range(len(text.split()))] if spec.use_bbox else None

    return [Record(text=t, bbox=boxes(t)) for t in TEXTS]


def op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("arch,task", [("bert", "classif"), ("bert", "ner"), ("distilbert", "multilabel-classif")])
def test_bert_style_graphs_are_fused_and_answer_what_torch_answers(tiny_model_dir, tmp_path, arch, task):
    model, tokenizer, spec = model_and_spec(tiny_model_dir, arch, task)
    recs = records(spec)
    probes = length_probes(spec, recs)
    torch_runner = TorchRunner(model, inputs_of(arch))
    expected = run_check(spec, tokenizer, torch_runner, [*recs, *probes])
    implementation = model.config._attn_implementation
    graph = export_onnx(model, spec, tokenizer, probes, tmp_path / "model.onnx")
    assert model.config._attn_implementation == implementation  # eager only while exporting
    assert graph["fused"] and graph["operators"]["Attention"] == model.config.num_hidden_layers, graph
    ops = op_types(tmp_path / "model.onnx")
    assert FUSED_OPS <= ops, ops
    assert not ops & {"FastGelu", "GemmFastGelu", "Softmax"}, ops  # exact Gelu; no unfused attention left
    runner = OnnxRunner(tmp_path / "model.onnx", intra_op_threads=1)
    assert runner.input_names == inputs_of(arch)
    assert parity(spec, expected, run_check(spec, tokenizer, runner, [*recs, *probes]), TOLERANCE)["passed"]
    # dynamic batch and sequence axes with padding: one record at a time, odd sizes, all in one batch
    for size in (1, 3, 32):
        got = predict(spec, tokenizer, runner, [*recs, *probes], all_scores=True, max_batch_size=size)
        figures = parity(spec, expected, got, TOLERANCE)
        assert figures["passed"], (size, figures)


def test_the_int8_model_is_quantized_from_the_fused_graph(tiny_model_dir, tmp_path):
    model, tokenizer, spec = model_and_spec(tiny_model_dir, "bert", "classif")
    assert export_onnx(model, spec, tokenizer, length_probes(spec, records(spec)), tmp_path / "model.onnx")["fused"]
    quantize_int8(tmp_path / "model.onnx", tmp_path / "model.int8.onnx")
    ops = op_types(tmp_path / "model.int8.onnx")
    assert {"QAttention", "MatMulInteger"} <= ops and "Attention" not in ops, ops
    batch = pad(encode(spec, tokenizer, records(spec)), inputs_of("bert"), tokenizer.pad_token_id)
    assert OnnxRunner(tmp_path / "model.int8.onnx")(batch).shape == (len(TEXTS), 3)


@pytest.mark.parametrize("arch,task", [("layoutlm", "ner"), ("longformer", "classif")])
def test_layoutlm_and_longformer_are_exported_unfused(tiny_model_dir, tmp_path, arch, task):
    assert family_for(arch).onnx_fusion is None
    model, tokenizer, spec = model_and_spec(tiny_model_dir, arch, task)
    graph = export_onnx(model, spec, tokenizer, length_probes(spec, records(spec)), tmp_path / "model.onnx")
    assert not graph["fused"] and graph["reason"].startswith(f"no fused graph for {arch}"), graph
    assert not op_types(tmp_path / "model.onnx") & FUSED_OPS


def test_a_failed_fusion_keeps_the_plain_graph_and_says_why(tiny_model_dir, tmp_path, monkeypatch):
    def failing_fuse(*args, **kwargs):
        raise RuntimeError("the optimizer fused 0 of 2 attention layers\nsecond line")

    monkeypatch.setattr("archive.onnx_export.fuse", failing_fuse)
    model, tokenizer, spec = model_and_spec(tiny_model_dir, "bert", "classif")
    recs = records(spec)
    probes = length_probes(spec, recs)
    expected = run_check(spec, tokenizer, TorchRunner(model, inputs_of("bert")), [*recs, *probes])
    graph = export_onnx(model, spec, tokenizer, probes, tmp_path / "model.onnx")
    assert graph == {"fused": False, "attention": "sdpa",
                     "reason": "fusion failed, the plain graph is kept: RuntimeError: the optimizer fused 0 of 2 "
                               "attention layers"}
    assert not op_types(tmp_path / "model.onnx") & FUSED_OPS
    got = run_check(spec, tokenizer, OnnxRunner(tmp_path / "model.onnx"), [*recs, *probes])
    assert parity(spec, expected, got, TOLERANCE)["passed"]
