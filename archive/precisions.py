"""Every CPU path our runtimes can serve for an ONNX archive, each gated, for serving.json's ``paths``.

Where ONNX Runtime's fp32 graph passed the parity gate (``archive.build._fp32_onnx``), ``gate_paths`` adds:
- ``onnx-int8``: dynamic int8 of the same graph (``archive.quantize``);
- ``openvino-fp32``: the plain (unfused) export in OpenVINO's IR (``runtimes.openvino_runtime``), which must
  answer what torch answers, like ONNX's fp32 graph (the parity gate, same tolerance);
- ``openvino-bf16``: the same IR under OpenVINO's bf16 precision hint.
int8 and bf16 pass where the task's primary dev metric loses at most ``quantize_tolerance`` against fp32
(``archive.quantize.quantization_gate``: today's rule). Every path, passed or not, is listed with why, its gate's
figures, and the primary metric on dev and test with it: the model card shows those (``model_card_section``),
and a worker serves one of the passed paths (``runtimes.precision``).

bf16 is gated only where this machine runs it natively (``runtimes.cpu``, and OpenVINO's own effective precision):
on a CPU without bf16 units OpenVINO runs the bf16 hint in fp32, and the gate would measure fp32. The path then
says so and does not serve; archive on a CPU with bf16 (AMX or AVX512_BF16) to gate it. int8 is gated on any CPU:
ONNX Runtime runs it everywhere, and the gate measures what this CPU's kernels answer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from archive.onnx_export import export_onnx, first_line, remove_graph
from archive.parity import CheckSets, parity, run_check
from archive.quantize import quantization_gate, quantize_int8, shortfall
from runtimes.cpu import read_cpu
from runtimes.onnx_runtime import SAVED_OPTIMIZATION, OnnxRunner, save_optimized
from runtimes.openvino_runtime import IR_FILE, OpenVinoRunner, save_ir, weights_file
from tasks.fields import Record
from tasks.kinds import Resolved
from tasks.serving_manifest import ServingPath

log = logging.getLogger(__name__)
ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
Preds = list[dict[str, Any]]


@dataclass(frozen=True)
class GateInputs:
    """What every path's gate runs on: the task, its tokenizer, the check sets and torch's fp32 answers."""

    task: Resolved
    tokenizer: Any
    torch_model: Any
    sets: CheckSets
    #: the length probes, then the test records, and torch's answers on them (the parity gate's reference)
    reference: tuple[list[Record], list[dict[str, Any]]]
    probes: int
    parity_tolerance: float
    quantize_tolerance: float


def gate_paths(inputs: GateInputs, exported: Path, fused: bool, payload: Path, parity_figures: dict[str, Any],
               work: Path) -> tuple[ServingPath, ...]:
    """Every path, gated, with the files of the passed ones left in ``payload`` (the fp32 ONNX graph is there
    already: it passed ``parity_figures``). ``exported``: the graph before ONNX Runtime's optimisations, which
    int8 quantizes; ``fused``: whether it is the fused one (OpenVINO then needs a plain export, made in ``work``)."""
    fp32 = OnnxRunner(payload / ONNX_FILE, optimized=SAVED_OPTIMIZATION)
    reference = Reference(dev=_preds(inputs, fp32, inputs.sets.dev), test=_preds(inputs, fp32, inputs.sets.test))
    fp32_path = ServingPath(name="onnx-fp32", runtime="onnx", precision="fp32", file=ONNX_FILE, passed=True,
                            gate="parity", figures=parity_figures, scores=_scores(inputs, reference),
                            reason="answers what torch answers (the parity gate)")
    paths = [fp32_path, _int8(inputs, exported, payload, reference)]
    paths += _openvino(inputs, exported, fused, payload, reference, work)
    for path in paths:
        log.info("path %s: %s (%s)", path.name, "passed" if path.passed else "not served", path.reason)
    return tuple(paths)


@dataclass(frozen=True)
class Reference:
    """One path's answers on dev and test (None: the split has no labelled records to score)."""

    dev: Preds | None
    test: Preds | None


def _preds(inputs: GateInputs, runner: Any, records: Sequence[Record]) -> Preds | None:
    if not records or any(r.label is None for r in records):
        return None
    return run_check(inputs.task, inputs.tokenizer, runner, records)


def _scores(inputs: GateInputs, answers: Reference) -> dict[str, Any]:
    """The primary metric on dev and test from a path's answers (None where a split was not scored)."""
    kind, spec = inputs.task.kind, inputs.task.spec

    def score(records: Sequence[Record], preds: Preds | None) -> float | None:
        if preds is None:
            return None
        return float(kind.score(spec.labels, [r.label for r in records], preds)[kind.primary_metric])

    return {"metric": kind.primary_metric, "dev": score(inputs.sets.dev, answers.dev),
            "test": score(inputs.sets.test, answers.test)}


def _dev_gated(inputs: GateInputs, name: str, precision: str, runtime: str, file: str, runner: Any,
               fp32: Reference) -> ServingPath:
    """A reduced-precision path through the dev gate, and the same rule on test where test has labels: passed
    where the primary metric loses at most the tolerance against fp32 on both (served == evaluated: the model
    card's test score is then within the tolerance too)."""
    base = ServingPath(name=name, runtime=runtime, precision=precision, file=file, gate="dev")
    if fp32.dev is None:
        return replace(base, reason="no dev split to gate it on: archive with --data DIR (its dev.csv)")
    answers = Reference(dev=_preds(inputs, runner, inputs.sets.dev), test=_preds(inputs, runner, inputs.sets.test))
    assert answers.dev is not None, "a labelled dev split for fp32 is labelled for every path"
    figures = quantization_gate(inputs.task, inputs.sets.dev, fp32.dev, answers.dev, inputs.quantize_tolerance,
                                precision)
    reason = shortfall(figures, precision)
    if fp32.test is not None and answers.test is not None:
        test = quantization_gate(inputs.task, inputs.sets.test, fp32.test, answers.test, inputs.quantize_tolerance,
                                 precision)
        test["metric"] = test["metric"].replace("dev_", "test_", 1)
        figures = {**figures, "test": test, "passed": bool(figures["passed"] and test["passed"])}
        if not test["passed"]:
            reason = f"{reason}; but {shortfall(test, precision)}"
    return replace(base, passed=bool(figures["passed"]), figures=figures, scores=_scores(inputs, answers),
                    reason=reason)


def _int8(inputs: GateInputs, exported: Path, payload: Path, fp32: Reference) -> ServingPath:
    """ONNX Runtime's dynamic int8 of the exported graph, optimised and saved like the fp32 one."""
    if fp32.dev is None:
        return _dev_gated(inputs, "onnx-int8", "int8", "onnx", INT8_FILE, None, fp32)
    path = payload / INT8_FILE
    try:
        quantize_int8(exported, path)
        save_optimized(path, path)
        gated = _dev_gated(inputs, "onnx-int8", "int8", "onnx", INT8_FILE,
                           OnnxRunner(path, optimized=SAVED_OPTIMIZATION), fp32)
    except Exception as exc:  # broad on purpose: a quantizer failure means "no int8 path", with its reason
        log.debug("int8 quantization failed", exc_info=True)
        gated = ServingPath(name="onnx-int8", runtime="onnx", precision="int8", file=INT8_FILE, gate="dev",
                            reason=f"int8 quantization failed: {first_line(exc)}")
    if not gated.passed:
        remove_graph(path)
    return gated


def _openvino(inputs: GateInputs, exported: Path, fused: bool, payload: Path, fp32_onnx: Reference,
              work: Path) -> list[ServingPath]:
    """OpenVINO fp32 (the parity gate) and bf16 (the dev gate) on the plain export in OpenVINO's IR."""
    ir = payload / IR_FILE
    fp32 = ServingPath(name="openvino-fp32", runtime="openvino", precision="fp32", file=IR_FILE, gate="parity")
    try:
        plain = exported
        if fused:  # OpenVINO reads ONNX Runtime's fused operators, but answered differently from torch on them
            plain = work / "plain.onnx"
            records = inputs.reference[0][:inputs.probes]
            export_onnx(inputs.torch_model, inputs.task, inputs.tokenizer, records, plain, fused=False)
        save_ir(plain, ir)
        runner = OpenVinoRunner(ir, "fp32")
        records, expected = inputs.reference
        figures = {**parity(inputs.task, expected, run_check(inputs.task, inputs.tokenizer, runner, records),
                            inputs.parity_tolerance), "length_probes": inputs.probes}
    except Exception as exc:  # broad on purpose: a conversion or run failure means "no OpenVINO path", with why
        log.debug("OpenVINO conversion or run failed", exc_info=True)
        _remove_ir(ir)
        why = f"OpenVINO conversion or run failed: {first_line(exc)}"
        return [replace(fp32, reason=why),
                ServingPath(name="openvino-bf16", runtime="openvino", precision="bf16", file=IR_FILE, gate="dev",
                            reason=why)]
    passed = bool(figures["passed"])
    answers = Reference(dev=_preds(inputs, runner, inputs.sets.dev), test=_preds(inputs, runner, inputs.sets.test))
    fp32 = replace(fp32, passed=passed, figures=figures, scores=_scores(inputs, answers) if passed else None,
                    reason="answers what torch answers (the parity gate)" if passed else
                    f"differs from torch: label agreement {figures['label_agreement']:.2%}, max difference "
                    f"{figures['max_abs_diff']:.2e} (tolerance {inputs.parity_tolerance:g})")
    if not read_cpu().native_bf16:
        bf16 = _bf16_not_gated("bf16 units (AMX or AVX512_BF16)")
    elif not passed:
        bf16 = ServingPath(name="openvino-bf16", runtime="openvino", precision="bf16", file=IR_FILE, gate="dev",
                           reason="OpenVINO's fp32 differs from torch, so its bf16 is not trusted either")
    else:
        bf16_runner = OpenVinoRunner(ir, "bf16")
        bf16 = (_dev_gated(inputs, "openvino-bf16", "bf16", "openvino", IR_FILE, bf16_runner, fp32_onnx)
                if bf16_runner.effective_precision == "bf16" else
                _bf16_not_gated(f"bf16 that OpenVINO uses (it runs the bf16 hint as "
                                f"{bf16_runner.effective_precision})"))
    if not (fp32.passed or bf16.passed):
        _remove_ir(ir)
    return [fp32, bf16]


def _bf16_not_gated(units: str) -> ServingPath:
    """The bf16 path where this machine cannot gate it: it lacks ``units``, so the gate would measure fp32."""
    cpu = read_cpu()
    return ServingPath(name="openvino-bf16", runtime="openvino", precision="bf16", file=IR_FILE, gate="dev",
                       reason=f"not gated: this machine's CPU ({cpu.model}, {cpu.kind}) has no {units}, so the "
                              "bf16 gate would measure fp32; archive on a CPU with AMX or AVX512_BF16 to gate it")


def _remove_ir(ir: Path) -> None:
    ir.unlink(missing_ok=True)
    weights_file(ir).unlink(missing_ok=True)


# -- the model card ------------------------------------------------------------------------------------------------
def model_card_section(paths: Sequence[ServingPath], kind_metric: str) -> str:
    """The model card's "Served precisions" section: each path, whether it serves, and its dev and test scores."""
    fmt: Callable[[Any], str] = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731 -- a one-line format
    rows = ["", "## Served precisions", "",
            f"Every CPU path `make archive` gated, with the primary metric ({kind_metric}) on dev and test served "
            "through it. A worker serves the fastest passed path its CPU runs natively (`SMTX_PRECISION` "
            "overrides: auto, fp32, int8, bf16); its log line and serving.json say which.", "",
            "| path | runtime | precision | gate | serves | dev | test | why |", "|---|---|---|---|---|---|---|---|"]
    for path in paths:
        scores = path.scores or {}
        why = path.reason.replace("|", "/")
        serves = "yes" if path.passed else "no"
        rows.append(f"| {path.name} | {path.runtime} | {path.precision} | {path.gate} | {serves} | "
                    f"{fmt(scores.get('dev'))} | {fmt(scores.get('test'))} | {why} |")
    return "\n".join(rows) + "\n"
