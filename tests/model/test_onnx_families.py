"""Every encoder family exports to ONNX and answers what torch answers: the families beyond the first five.

Tiny random models built in-process (``from_config``), exported by ``export_graph`` with the inputs the real
checkpoints take, fused with ONNX Runtime's "bert" optimizer where it fuses every attention layer (else the plain
graph), and run at another batch size and padded width than the one traced. Also: ALBERT's shared layers are
exported once, and a graph whose weights go to ``model.onnx.data`` loads from the archive's layout.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from archive.onnx_export import export_graph
from runtimes.onnx_runtime import OnnxRunner, external_data_file, save_optimized

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "vocab_size": 200, "max_position_embeddings": 64}
#: model_type -> (config as the real checkpoints have it, the inputs their forward takes, fused with "bert").
#: Fused: ONNX Runtime's "bert" optimizer fuses every attention layer (XLM-R and CamemBERT as RoBERTa: no
#: EmbedLayerNormalization, their position ids come from the padding). Not fused: DeBERTa-v2's disentangled,
#: ModernBERT's rotary and MPNet's relative attention match no attention pattern; ALBERT's shared layer fuses
#: once, not per layer.
FAMILIES = {
    "xlm-roberta": ({"pad_token_id": 1, "type_vocab_size": 1}, ("input_ids", "attention_mask"), True),
    "camembert": ({"pad_token_id": 1, "type_vocab_size": 1}, ("input_ids", "attention_mask"), True),
    "electra": ({"embedding_size": 16}, ("input_ids", "attention_mask", "token_type_ids"), True),
    "deberta-v2": ({"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "position_biased_input": False,
                    "max_relative_positions": -1, "position_buckets": 16, "norm_rel_ebd": "layer_norm",
                    "share_att_key": True, "type_vocab_size": 0}, ("input_ids", "attention_mask"), False),
    "modernbert": ({"pad_token_id": 0, "global_attn_every_n_layers": 2, "local_attention": 8},
                   ("input_ids", "attention_mask"), False),
    "albert": ({"embedding_size": 16}, ("input_ids", "attention_mask", "token_type_ids"), False),
    "mpnet": ({"pad_token_id": 1}, ("input_ids", "attention_mask"), False),
}
#: the traced batch, and another batch size and width to run the graph at (dynamic axes, padding)
TRACED, OTHER = (13, 9, 4), (21, 2, 17, 6, 1)


def tiny_model(model_type: str, token_head: bool, **overrides):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    config = AutoConfig.for_model(model_type, num_labels=3, **{**TINY, **FAMILIES[model_type][0], **overrides})
    torch.manual_seed(0)
    head = AutoModelForTokenClassification if token_head else AutoModelForSequenceClassification
    return head.from_config(config).eval()


def padded(model, names: tuple[str, ...], lengths: tuple[int, ...], seed: int) -> dict:
    """Random token ids, padded on the right to the longest of ``lengths``; a second segment in each row."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    ids = torch.full((len(lengths), max(lengths)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    segments = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(5, model.config.vocab_size, (length,), generator=generator)
        mask[row, :length] = 1
        segments[row, length // 2:length] = 1
    return {name: tensor for name, tensor in
            (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", segments)) if name in names}


def max_diff(model, path: Path, names: tuple[str, ...], lengths: tuple[int, ...] = OTHER) -> float:
    """The largest difference between torch's and the graph's logits on real tokens, on a fresh padded batch."""
    import torch

    batch = padded(model, names, lengths, seed=1)
    with torch.no_grad():
        expected = model(**batch).logits.numpy()
    runner = OnnxRunner(path, intra_op_threads=1)
    assert runner.input_names == names
    got = runner({name: tensor.numpy() for name, tensor in batch.items()})
    if got.ndim == 3:  # token head: the padding's logits are never read
        real = batch["attention_mask"].numpy().astype(bool)
        got, expected = got[real], expected[real]
    return float(np.abs(got - expected).max())


def export(model, names: tuple[str, ...], dst: Path, **kwargs) -> dict:
    batch = padded(model, names, TRACED, seed=0)
    token_head = type(model).__name__.endswith("ForTokenClassification")
    return export_graph(model, names, tuple(batch[n] for n in names), token_head, dst, **kwargs)


def weight_bytes(path: Path) -> int:
    return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer)


@pytest.mark.parametrize("token_head", [False, True], ids=["sequence", "token"])
@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_each_family_exports_fused_where_it_can_and_answers_what_torch_answers(model_type, token_head, tmp_path):
    _, names, fusable = FAMILIES[model_type]
    model = tiny_model(model_type, token_head)
    graph = export(model, names, tmp_path / "model.onnx", fusion="bert")
    assert graph["fused"] == fusable, graph
    if fusable:
        assert graph["operators"]["Attention"] == model.config.num_hidden_layers, graph
    else:  # the optimizer's partial rewrite is refused, and the plain graph is traced with the model's attention
        assert graph["reason"].startswith("fusion failed, the plain graph is kept"), graph
        assert graph["attention"] == model.config._attn_implementation
    assert not external_data_file(tmp_path / "model.onnx").exists()  # small graphs stay one file
    assert max_diff(model, tmp_path / "model.onnx", names) <= TOLERANCE


def test_albert_shares_its_layer_in_the_graph_as_in_the_weights(tmp_path):
    """transformers issue 8869: ALBERT's one shared layer exported once per use, a graph N times its weights."""
    _, names, _ = FAMILIES["albert"]
    model = tiny_model("albert", False, num_hidden_layers=12)
    export(model, names, tmp_path / "model.onnx")
    model.save_pretrained(tmp_path / "weights")
    weights = sum(path.stat().st_size for path in (tmp_path / "weights").glob("*.safetensors"))
    # one copy of the shared layer is ~45% of these weights: twelve copies would be ~6x
    assert weight_bytes(tmp_path / "model.onnx") <= 1.05 * weights
    save_optimized(tmp_path / "model.onnx", tmp_path / "served.onnx")  # as make archive saves what serves
    assert weight_bytes(tmp_path / "served.onnx") <= 1.05 * weights
    assert max_diff(model, tmp_path / "served.onnx", names) <= TOLERANCE


@pytest.mark.parametrize("fusion", ["bert", None], ids=["fused", "plain"])
def test_weights_beside_the_graph_load_from_the_archive_layout(fusion, tmp_path):
    _, names, _ = FAMILIES["xlm-roberta"]
    model = tiny_model("xlm-roberta", False)
    exported = tmp_path / "work" / "exported.onnx"
    graph = export(model, names, exported, fusion=fusion, external_data_above=0)  # forced: a graph over 2 GB
    assert graph["fused"] == (fusion is not None), graph
    data = external_data_file(exported)
    assert data.name == "exported.onnx.data"
    # the weights are in .data, all but tensors under 1 KiB (LayerNorm's here); the graph file holds the nodes
    assert exported.stat().st_size < data.stat().st_size and data.stat().st_size > 0.9 * weight_bytes(exported)
    # moved with its data file, as the archive packs and SageMaker unpacks them: the location is relative
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.move(exported, archive / "exported.onnx")
    shutil.move(data, archive / data.name)
    assert max_diff(model, archive / "exported.onnx", names) <= TOLERANCE


def test_the_served_graph_carries_its_weights_into_the_archive(tmp_path):
    """save_optimized gives the graph it writes its own weights file: left alone, ONNX Runtime writes a graph that
    still points at the export's (exported.onnx.data, in make archive's work folder, gone when it is packed)."""
    _, names, _ = FAMILIES["xlm-roberta"]
    model = tiny_model("xlm-roberta", False)
    exported, payload = tmp_path / "work" / "exported.onnx", tmp_path / "payload"
    export(model, names, exported, fusion="bert", external_data_above=0)
    payload.mkdir()
    save_optimized(exported, payload / "model.onnx")  # as make archive saves what serves, from its work folder
    shutil.rmtree(tmp_path / "work")  # the work folder is gone when the archive is packed
    assert max_diff(model, payload / "model.onnx", names) <= TOLERANCE


def test_an_attention_that_cannot_be_set_falls_back_to_eager(tmp_path):
    _, names, _ = FAMILIES["electra"]
    model = tiny_model("electra", False)
    # flash attention needs a GPU and the flash-attn package: setting it fails here, as a failed trace would
    graph = export(model, names, tmp_path / "model.onnx", attention="flash_attention_2")
    assert graph["attention"] == "eager" and not graph["fused"], graph
    assert model.config._attn_implementation == "sdpa"  # the model keeps its own afterwards
    assert max_diff(model, tmp_path / "model.onnx", names) <= TOLERANCE


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_the_family_table_and_the_derived_inputs_agree_with_what_was_measured(model_type):
    from runtimes.torch_runtime import model_facts
    from tasks.families import family_for

    _, names, fused = FAMILIES[model_type]
    assert model_facts(tiny_model(model_type, False))[0] == names  # derived from the config and the forward
    assert family_for(model_type).onnx_fusion == ("bert" if fused else None)
