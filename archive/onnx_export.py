"""ONNX for serving, where it earns it: export, a parity gate against torch, optional int8 behind a metric gate.

``make archive`` serves a model with ONNX Runtime only when, through ``tasks.predict`` (the one prediction path,
so encoding and decoding are identical), ONNX answers what torch answers on the checkpoint's test set: the same
labels and every probability within ``parity_tolerance`` (the predicted value itself for regression). Any other
outcome -- an export error, a run error (Longformer's sliding-window attention, traced at one length, breaks at
another), a difference -- keeps torch and says why in ``serving.json``.

The test set is the checkpoint's ``test_predictions.jsonl`` (texts only), or ``test.csv`` of ``--data DIR`` when
given; LayoutLM-style models need the boxes, so without ``--data`` they stay on torch. A few "length probes",
built from the test words at 1 word, half and twice the maximum length, make the check cover short inputs, full
windows and several batch widths, which a small test set may miss.

``quantize="int8"`` adds dynamic int8 quantization, kept only when the task's primary dev metric loses at most
``quantize_tolerance``; otherwise ``QuantizationRefused`` says by how much it missed. The rule (see
``quantization_gate``): a metric where greater is better (the F1 scores, on a 0-1 scale) may drop by at most
``tolerance`` in absolute terms (0.005 = 0.5 points); a metric where lower is better (regression's MSE, whose
scale depends on the target) may grow by at most ``tolerance`` relative to fp32 (0.005 = 0.5 %).

BERT-style graphs (``FUSED_FAMILIES``) are exported with eager attention and rewritten by ONNX Runtime's
transformer optimizer into its fused CPU operators (Attention, EmbedLayerNormalization, SkipLayerNormalization,
BiasGelu): measured on MiniLM-L6 (2 threads, AVX2 CPU, micro-batches of 32), about 1.15-1.2x the fp32 throughput
and, quantized after fusion, about 1.2x the int8 throughput of the unfused graph, with probabilities as close to
torch's as the unfused graph's (max difference ~6e-8). The fused graph is the one the parity gate checks and
the one int8 quantizes. Where fusion does not apply (LayoutLM, Longformer) or fails, the plain export is kept,
and ``graph`` in ``serving.json`` says which and why.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tasks.batching import pad
from tasks.encode import encode
from tasks.families import family_for
from tasks.kinds import task_kind
from tasks.predict import Runner, predict
from tasks.errors import RecordError
from tasks.records import Record, make_record, split_words
from tasks.spec import TaskSpec

log = logging.getLogger(__name__)
OPSET = 17
#: micro-batches of the parity check: small, so that it sees several batch sizes and padded widths
CHECK_BATCH_SIZE = 4
#: families whose graphs ONNX Runtime's "bert" optimizer fuses (its patterns also cover DistilBERT and RoBERTa);
#: LayoutLM (box embeddings) and Longformer (sliding-window attention) are exported unfused
FUSED_FAMILIES = ("bert", "distilbert", "roberta")
#: fused operators that approximate (tanh Gelu) where the model computes exact Gelu: never in a served graph
APPROXIMATIONS = ("FastGelu", "GemmFastGelu")


class QuantizationRefused(RuntimeError):
    """int8 was asked for but cannot be served: the gate missed (``figures`` says by how much) or no ONNX."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


class NoCheckData(ValueError):
    """There is nothing to check the ONNX model against (the message is the reason torch is kept)."""


@dataclass(frozen=True)
class CheckSets:
    """The records the gates run on."""

    test: list[Record]
    dev: list[Record] = field(default_factory=list)


# -- the data the gates run on ------------------------------------------------------------------------------------
def check_sets(checkpoint: Path, spec: TaskSpec, data: Path | None) -> CheckSets:
    """Test (and dev) records from ``data`` (train/dev/test.csv), else the texts of ``test_predictions.jsonl``."""
    if data is not None:
        from training.data import load_dataset

        dataset = load_dataset(data, spec.task, spec.use_bbox)  # DataError: a broken --data is the caller's to fix
        if not dataset.test:
            raise NoCheckData(f"{data}/test.csv has no records to check ONNX against")
        return CheckSets(test=dataset.test, dev=dataset.dev)
    if spec.use_bbox:
        raise NoCheckData("this model reads word boxes, which test_predictions.jsonl does not keep; "
                          "pass --data DIR (its test.csv has the boxes) to check ONNX against torch")
    path = checkpoint / "test_predictions.jsonl"
    if not path.is_file():
        raise NoCheckData(f"{path.name} is missing from the checkpoint and no --data was given: "
                          "nothing to check ONNX against")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [record for row in rows if (record := _input_record(spec, row)) is not None]
    if not records:
        raise NoCheckData(f"{path.name} has no texts to check ONNX against")
    return CheckSets(test=records)


def _input_record(spec: TaskSpec, row: dict[str, Any]) -> Record | None:
    """The record a ``test_predictions.jsonl`` row was predicted from (its text fields), or None if not valid."""
    try:
        return make_record(spec.task, False, row)
    except RecordError:
        return None


def length_probes(spec: TaskSpec, records: Sequence[Record]) -> list[Record]:
    """Records of 1 word, half and twice ``max_seq_length`` words, cycled from ``records`` (boxes included);
    every text field of the task (a pair's two texts) gets the same words."""
    words, boxes = [], []
    for record in records:
        words.extend(split_words(record.text))
        boxes.extend(record.bbox or [])
    probes = []
    for n in (1, spec.max_seq_length // 2, 2 * spec.max_seq_length):
        text = " ".join(words[i % len(words)] for i in range(n))
        fields: dict[str, Any] = {name: text for name in task_kind(spec.task).inputs}
        fields["bbox"] = [boxes[i % len(boxes)] for i in range(n)] if spec.use_bbox else None
        probes.append(make_record(spec.task, spec.use_bbox, fields))
    return probes


# -- export and quantization --------------------------------------------------------------------------------------
def _logits_module(model: Any, names: tuple[str, ...]) -> Any:
    """``model`` as a module taking its inputs positionally (in ``names`` order) and returning only logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs))).logits

    # eval before export: the exporter restores the wrapper's mode on exit, recursively, so a wrapper left in
    # training mode would switch the model's dropout back on
    return LogitsOnly().eval()


def export_onnx(model: Any, spec: TaskSpec, tokenizer: Any, sample: Sequence[Record], dst: Path) -> dict[str, Any]:
    """Write ``model`` as fp32 ONNX to ``dst``: inputs named as the family's, batch and sequence axes dynamic.

    ``sample`` must encode to features of different lengths, so that the traced attention mask has padding:
    a mask of all ones may be optimised away while tracing, and the graph would then ignore padding.

    A family of ``FUSED_FAMILIES`` gets the fused graph (see ``fuse``), or the plain one where fusion fails.
    Returns what ``serving.json`` records as ``graph``: whether it is fused, the fused operators, and why.
    """
    import torch

    names = family_for(spec.model_type).input_names()
    batch = pad(encode(spec, tokenizer, list(sample)), family_for(spec.model_type), tokenizer.pad_token_id)
    args = tuple(torch.from_numpy(batch[name]) for name in names)
    if spec.model_type not in FUSED_FAMILIES:
        _trace(model, names, args, task_kind(spec.task).head == "token", dst)
        return {"fused": False, "reason": f"no fused graph for {spec.model_type}: ONNX Runtime's transformer "
                                          "optimizer has no fusions for its attention or embeddings"}
    try:
        with tempfile.TemporaryDirectory(prefix="smtx-onnx-") as tmp:
            eager = Path(tmp) / "eager.onnx"
            # the optimizer recognises the eager attention's MatMul/Softmax pattern, not the graph traced from SDPA
            with _eager_attention(model):
                _trace(model, names, args, task_kind(spec.task).head == "token", eager)
            operators = fuse(eager, dst, model.config, names)
    except Exception as exc:  # noqa: BLE001 -- any fusion failure means "serve the plain graph", with its reason
        log.warning("ONNX graph not fused, keeping the plain one: %s", _first_line(exc))
        log.debug("ONNX fusion failed", exc_info=True)
        dst.unlink(missing_ok=True)
        _trace(model, names, args, task_kind(spec.task).head == "token", dst)
        return {"fused": False, "reason": f"fusion failed, the plain graph is kept: {_first_line(exc)}"}
    return {"fused": True, "operators": operators,
            "reason": "fused by ONNX Runtime's transformer optimizer (exact Gelu, raw attention mask, fp32)"}


def _trace(model: Any, names: tuple[str, ...], args: tuple, token_head: bool, dst: Path) -> None:
    """The TorchScript export of ``model`` on ``args`` to ``dst``."""
    import torch

    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch", 1: "sequence"} if token_head else {0: "batch"}
    with warnings.catch_warnings():
        # tracer warnings about Python branches on shapes are expected; the parity check is what verifies them
        warnings.simplefilter("ignore")
        # the TorchScript exporter: still shipped with torch 2.13, it exports these models in under a second
        # where the dynamo exporter takes tens of seconds for the same graph (and also fails on Longformer)
        torch.onnx.export(_logits_module(model, names), args, str(dst), input_names=list(names),
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    model.eval()


@contextlib.contextmanager
def _eager_attention(model: Any):
    """``model`` with eager attention inside the block, its own implementation (SDPA by default) after it."""
    before = model.config._attn_implementation
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before is not None and model.config._attn_implementation != before:
            model.set_attn_implementation(before)


@contextlib.contextmanager
def _quiet_logging():
    """The optimizer logs every node it removes at INFO; keep warnings only while it runs."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        yield
    finally:
        logging.disable(previous)


def fuse(src: Path, dst: Path, config: Any, names: Sequence[str]) -> dict[str, int]:
    """Write ``src`` rewritten with ONNX Runtime's fused transformer operators to ``dst``; their counts.

    Options that change the numbers stay off: no Gelu approximation, fp32 throughout. The attention mask stays
    the raw 0/1 mask the model takes (not a per-row length, which would assume padding on the right). Raises
    when the rewrite is partial (not every layer's attention fused) or changes the graph's inputs or output.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = False
    options.enable_gemm_fast_gelu = False
    options.use_multi_head_attention = False
    options.use_raw_attention_mask(True)
    with _quiet_logging(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # opt_level 0: the Python fusions only; the session applies ONNX Runtime's own optimizations at load
        optimized = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size, optimization_options=options, opt_level=0)
        fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
    graph = optimized.model.graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    layers = config.num_hidden_layers
    if counts.get("Attention", 0) != layers:
        raise RuntimeError(f"the optimizer fused {counts.get('Attention', 0)} of {layers} attention layers "
                           f"(fused: {fused or 'nothing'})")
    approximated = [op for op in APPROXIMATIONS if counts.get(op)]
    if approximated:
        raise RuntimeError(f"the fused graph approximates Gelu ({approximated})")
    inputs, outputs = [i.name for i in graph.input], [o.name for o in graph.output]
    if sorted(inputs) != sorted(names) or outputs != ["logits"]:
        raise RuntimeError(f"the fused graph takes {inputs} and gives {outputs}; expected {list(names)} -> logits")
    with _quiet_logging():
        optimized.save_model_to_file(str(dst))
    return fused


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantization of ``src``'s weights (activations are quantized at run time).

    ``src`` is the graph the fp32 gate passed, fused where it could be: ONNX Runtime quantizes after fusion, and
    its fused Attention becomes QAttention.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # a fused graph's contrib operators (Attention, SkipLayerNormalization, ...) have no ONNX type inference:
    # their outputs are float, which the quantizer must be told
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:limit]}"


# -- the gates ----------------------------------------------------------------------------------------------------
def run_check(spec: TaskSpec, tokenizer: Any, runner: Runner, records: Sequence[Record]) -> list[dict]:
    """Predictions with every class's score, through the serving path, in small micro-batches."""
    return predict(spec, tokenizer, runner, records, all_scores=True, max_batch_size=CHECK_BATCH_SIZE)


def _numbers(task: str, pred: dict) -> list[float]:
    """Every probability of one prediction (the predicted value for a task without labels: regression)."""
    if not task_kind(task).has_labels:
        return [float(pred["pred"])]
    scores = pred.get("scores")
    rows = scores if isinstance(scores, list) else [scores]
    return [p for row in rows if row for p in row.values()]


def parity(spec: TaskSpec, expected: Sequence[dict], got: Sequence[dict], tolerance: float) -> dict[str, Any]:
    """Figures of ``got`` (ONNX) against ``expected`` (torch): label agreement and the largest difference."""
    regression = not task_kind(spec.task).has_labels  # a value, compared within tolerance, not a label
    same, worst = 0, 0.0
    for e, g in zip(expected, got):
        a, b = _numbers(spec.task, e), _numbers(spec.task, g)
        diff = max((abs(x - y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else math.inf
        worst = max(worst, diff)
        same += (diff <= tolerance) if regression else (e["pred"] == g["pred"])
    n = len(expected)
    return {"records": n, "label_agreement": same / n if n else 1.0, "max_abs_diff": worst, "tolerance": tolerance,
            "compared": "predicted values" if regression else "probabilities of every label",
            "passed": n == len(got) and same == n and worst <= tolerance}


def quantization_gate(spec: TaskSpec, dev: Sequence[Record], fp32_preds: Sequence[dict], int8_preds: Sequence[dict],
                      tolerance: float) -> dict[str, Any]:
    """The primary dev metric with fp32 and int8, how much int8 loses, and whether that is within ``tolerance``.

    ``loss`` is fp32 - int8 for a metric where greater is better (absolute, on its 0-1 scale), and
    (int8 - fp32) / fp32 where lower is better (relative: MSE has the scale of the target squared).
    """
    kind = task_kind(spec.task)
    gold = [r.label for r in dev]
    fp32 = float(kind.score(spec.labels, gold, fp32_preds)[kind.primary_metric])
    int8 = float(kind.score(spec.labels, gold, int8_preds)[kind.primary_metric])
    if kind.greater_is_better:
        loss, rule = fp32 - int8, "absolute drop (fp32 - int8)"
    else:
        loss = (int8 - fp32) / abs(fp32) if fp32 else (math.inf if int8 > fp32 else 0.0)
        rule = "relative increase ((int8 - fp32) / fp32)"
    return {"metric": f"dev_{kind.primary_metric}", "fp32": fp32, "int8": int8, "loss": loss, "rule": rule,
            "tolerance": tolerance, "dev_records": len(dev), "passed": loss <= tolerance}


def refusal(figures: dict[str, Any]) -> str:
    """What a failed quantization gate prints: both scores and by how much the loss missed the tolerance."""
    relative = figures["rule"].startswith("relative")
    fmt = (lambda v: f"{100 * v:.2f}%") if relative else (lambda v: f"{v:.4f}")
    return (f"int8 quantization refused: {figures['metric']} is {figures['int8']:.4f} with int8 against "
            f"{figures['fp32']:.4f} with fp32, a loss of {fmt(figures['loss'])} ({figures['rule']}); at most "
            f"{fmt(figures['tolerance'])} is allowed, missed by {fmt(figures['loss'] - figures['tolerance'])}. "
            "Archive without --quantize to serve fp32.")
