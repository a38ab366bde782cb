"""Build ``<name>.mar`` (local TorchServe) and ``model.tar.gz`` (SageMaker) from one staged directory.

The staged directory is what TorchServe loads: the checkpoint's serving files, the ``tasks``, ``runtimes`` and
``handlers`` packages, the handler entry file, ``MAR-INF/MANIFEST.json`` (written by torch-model-archiver) and
``model-config.yaml`` with the batching settings -- a model registered by ``POST /models`` with a JSON body
(SageMaker's multi-model mode) takes its batch settings only from there. The ``.mar`` zips that directory and
``model.tar.gz`` tars it, so both carry the same bytes and nothing is read from outside at serving time.

The runtime is chosen here (``choose_runtime``): ONNX Runtime where the exported model (``archive/onnx_export.py``)
passes the parity gate (``archive/parity.py``), torch otherwise, with the reason and the gate figures in
``serving.json`` (and ``graph``: whether the ONNX graph is fused, and why not); int8 behind its own gate
(``archive/quantize.py``). The served graph is saved after ONNX Runtime's graph optimisations
(``runtimes.onnx_runtime.save_optimized``), and the gates run on that saved graph, opened as a worker opens it.

An archive carries what it serves: where ONNX serves, the graph, ``config.json``, ``task_spec.json`` and the
serving tokenizer (``runtimes.tokenizer``: transformers' tokenizer as it tokenized, for a worker without torch) --
no safetensors weights and no other tokenizer files, unless ``keep_weights`` keeps them as a way back to torch.
An archive that keeps the weights (torch serves, or ``keep_weights``) also carries ``parity_check.jsonl``: the
check set a worker given a GPU runs at load to keep fp16 (``archive.parity.gpu_entry``, ``runtimes.device``).
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from archive.checks import read_checkpoint
from archive.onnx_export import export_onnx, first_line, remove_graph
from archive.parity import NoCheckData, check_sets, gpu_entry, length_probes, parity, run_check
from archive.precisions import INT8_FILE, ONNX_FILE, GateInputs, gate_paths, model_card_section
from archive.quantize import QuantizationRefused, refusal
from runtimes.checkpoint import write_serving
from runtimes.model_source import check_model
from runtimes.onnx_runtime import OnnxRunner, save_optimized
from runtimes.parity import MAX_CHECK_RECORDS
from runtimes.tokenizer import write_serving_tokenizer
from tasks.fields import Record
from tasks.kinds import Resolved
from tasks.serving_manifest import SERVING_FILE, ServingManifest

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
#: the packages serving imports, and nothing else: the worker needs no archive-building code
CODE_PACKAGES = ("tasks", "runtimes", "handlers")
HANDLER_FILE = "ts_handler.py"
#: checkpoint files that serving needs (metrics, plots and predictions stay with the training output)
SERVING_FILES = ("config.json", "task_spec.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                 "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "README.md", "metrics.json")
#: what an ONNX archive drops unless keep_weights: torch's weights and the tokenizer files transformers reads
TORCH_ONLY = ("*.safetensors", "vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json",
              "special_tokens_map.json", "added_tokens.json")
RUNTIMES = ("onnx", "torch")
ASKED_TORCH = "runtime 'torch' was asked for (--runtime torch)"
QUANTIZATIONS = (None, "int8")


@dataclass(frozen=True)
class ArchiveSettings:
    """Server-side batching written into model-config.yaml (TorchServe's per-model settings)."""

    batch_size: int = 8
    #: 1 ms: requests already queued behind a running batch join the next one, and a lone request waits 1 ms, not
    #: 20 (measured: the p50 of one request through TorchServe fell from 37 ms to 22 ms). 1 is the smallest:
    #: TorchServe 0.12 reads a 0 in model-config.yaml as unset and waits its 100 ms default (measured: 106 ms p50)
    max_batch_delay_ms: int = 1
    response_timeout_s: int = 120
    startup_timeout_s: int = 300

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                why = (" (TorchServe 0.12 reads 0 as unset and waits its 100 ms default: 1 is the smallest delay)"
                       if name == "max_batch_delay_ms" and value == 0 else "")
                raise ValueError(f"{name}={value!r} is not valid; expected a positive integer{why}")

    def model_config_yaml(self) -> str:
        return (f"batchSize: {self.batch_size}\nmaxBatchDelay: {self.max_batch_delay_ms}\n"
                f"responseTimeout: {self.response_timeout_s}\nstartupTimeout: {self.startup_timeout_s}\n")


@dataclass(frozen=True)
class RuntimeOptions:
    """Which runtime to serve with, and the gates that decide it."""

    #: "onnx": ONNX Runtime where it passes the parity gate, torch otherwise; "torch": torch, no export
    runtime: str = "onnx"
    #: None, or "int8": dynamic int8 quantization of the ONNX model, behind the dev-metric gate
    quantize: str | None = None
    #: a data folder (train/dev/test.csv): its test.csv for the parity gate, dev.csv for the quantization gate
    data: Path | None = None
    #: largest difference allowed between a torch and an ONNX probability (or regression value)
    parity_tolerance: float = 1e-5
    #: how much int8 may lose on the primary dev metric (see ``archive.quantize.quantization_gate``);
    #: a negative value demands that int8 beat fp32, which the tests use to force a refusal
    quantize_tolerance: float = 0.005
    #: ONNX archives only: keep the safetensors weights and transformers' tokenizer files (a way back to torch)
    keep_weights: bool = False

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime={self.runtime!r} is not valid; expected one of {list(RUNTIMES)}")
        if self.quantize not in QUANTIZATIONS:
            raise ValueError(f"quantize={self.quantize!r} is not valid; expected None or 'int8'")
        if self.quantize and self.runtime != "onnx":
            raise ValueError(f"quantize={self.quantize!r} needs runtime 'onnx', got {self.runtime!r}")
        if self.quantize and self.data is None:
            raise ValueError(f"quantize={self.quantize!r} needs data: a folder whose dev.csv scores the quantized "
                             "model (--data DIR)")
        if not (math.isfinite(self.parity_tolerance) and self.parity_tolerance >= 0):
            raise ValueError(f"parity_tolerance={self.parity_tolerance!r} is not valid; expected a number >= 0")
        if not math.isfinite(self.quantize_tolerance):
            raise ValueError(f"quantize_tolerance={self.quantize_tolerance!r} is not valid; expected a finite number")


@dataclass
class Built:
    mar: Path
    tarball: Path
    runtime: str
    #: what serving.json says: runtime, onnx_file, reason, parity and quantization figures
    serving: ServingManifest


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    if not cleaned:
        raise ValueError(f"model name {name!r} has no usable characters (letters, digits, _ and -)")
    return cleaned


def _copy_code(dst: Path) -> None:
    for package in CODE_PACKAGES:
        shutil.copytree(ROOT / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "handlers" / HANDLER_FILE, dst / HANDLER_FILE)


def _payload(checkpoint: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for name in SERVING_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, dst / name)
    # copied for every runtime: torch serves from them, and the ONNX export reads the checkpoint, not these
    for weights in checkpoint.glob("*.safetensors"):
        shutil.copy2(weights, dst / weights.name)
    _copy_code(dst)


def _torch(reason: str, **figures: Any) -> ServingManifest:
    log.warning("serving with torch: %s", reason)
    return ServingManifest(runtime="torch", reason=reason, **figures)


def choose_runtime(checkpoint: Path, task: Resolved, payload: Path, options: RuntimeOptions) -> ServingManifest:
    """Export to ``payload`` and keep ONNX where it passes the gates; what becomes serving.json.

    Its ``gpu`` entry (``archive.parity.gpu_entry``) says what a GPU worker does, and the check set it runs at
    load (``parity_check.jsonl``) is written wherever the archive keeps torch's weights.
    Raises QuantizationRefused when int8 was asked for and cannot be served (gate missed, or no ONNX at all).
    """
    try:
        sets = check_sets(checkpoint, task, options.data)
    except NoCheckData as exc:
        return replace(_no_check_data(exc, options), gpu=gpu_entry(payload, True, None, str(exc)))
    from runtimes.torch_runtime import load_checkpoint

    _, tokenizer, torch_runner = load_checkpoint(checkpoint, task)
    probes = length_probes(task, sets.test)
    # without an export, the check set's records are all torch needs to answer
    records = [*probes, *(sets.test if options.runtime == "onnx" else sets.test[:MAX_CHECK_RECORDS])]
    reference = (records, run_check(task, tokenizer, torch_runner, records))
    if options.runtime == "torch":
        return ServingManifest(runtime="torch", reason=ASKED_TORCH, gpu=gpu_entry(payload, True, reference))
    with tempfile.TemporaryDirectory(prefix="smtx-onnx-") as work:
        exported = Path(work) / "exported.onnx"  # before ONNX Runtime's own optimisations: what int8 quantizes
        serving = _fp32_onnx(task, tokenizer, torch_runner, reference, len(probes), exported, payload,
                             options.parity_tolerance)
        if serving.runtime == "onnx":
            # every other CPU path (int8, OpenVINO fp32 and bf16), each through its gate (archive.precisions)
            inputs = GateInputs(task=task, tokenizer=tokenizer, torch_model=torch_runner.model, sets=sets,
                                reference=reference, probes=len(probes), parity_tolerance=options.parity_tolerance,
                                quantize_tolerance=options.quantize_tolerance)
            fused = bool(serving.graph and serving.graph.get("fused"))
            assert serving.parity is not None, "an ONNX serving.json always carries its parity figures"
            serving = replace(serving, paths=gate_paths(inputs, exported, fused, payload, serving.parity, Path(work)))
            _model_card(payload, serving, task)
        if options.quantize is not None:
            if serving.runtime != "onnx":
                raise QuantizationRefused(f"int8 quantization refused: it needs ONNX, which was not chosen: "
                                          f"{serving.reason}")
            serving = _quantized(serving, options.quantize_tolerance)
    weights = serving.runtime == "torch" or options.keep_weights
    if serving.runtime == "onnx":
        _lean_payload(tokenizer, payload, options.keep_weights)
        serving = replace(serving, weights="kept (--keep-weights)" if options.keep_weights else "dropped: ONNX serves")
    return replace(serving, gpu=gpu_entry(payload, weights, reference))


def _no_check_data(exc: NoCheckData, options: RuntimeOptions) -> ServingManifest:
    """serving.json where nothing can be checked: torch (asked for, or because ONNX cannot be checked)."""
    if options.runtime == "torch":
        return ServingManifest(runtime="torch", reason=ASKED_TORCH)
    if options.quantize is not None:
        raise QuantizationRefused(
            f"int8 quantization refused: it needs ONNX, which was not chosen: {exc}") from exc
    return _torch(str(exc))


def _lean_payload(tokenizer: Any, payload: Path, keep_weights: bool) -> None:
    """An ONNX archive's serving tokenizer, and without torch's files unless ``keep_weights``."""
    if not keep_weights:
        for pattern in TORCH_ONLY:
            for path in payload.glob(pattern):
                path.unlink()
    write_serving_tokenizer(tokenizer, payload)


def _fp32_onnx(task: Resolved, tokenizer: Any, torch_runner: Any,
               reference: tuple[list[Record], list[dict[str, Any]]], probes: int, exported: Path, payload: Path,
               tolerance: float) -> ServingManifest:
    """ONNX in ``payload`` if it answers what torch answered (``reference``: the length probes, then the test
    records, with torch's answers); else torch."""
    records, expected = reference
    onnx_path = payload / ONNX_FILE
    try:
        graph = export_onnx(torch_runner.model, task, tokenizer, records[:probes], exported)
        optimized = save_optimized(exported, onnx_path)
        got = run_check(task, tokenizer, OnnxRunner(onnx_path, optimized=optimized), records)
    except Exception as exc:  # broad on purpose: any export or run failure means "serve torch", with its reason
        log.debug("ONNX export or run failed", exc_info=True)
        remove_graph(onnx_path)
        return _torch(f"ONNX export or run failed: {first_line(exc)}")
    figures = {**parity(task, expected, got, tolerance), "length_probes": probes}
    if not figures["passed"]:
        remove_graph(onnx_path)
        return _torch(f"ONNX differs from torch on the test set: label agreement {figures['label_agreement']:.2%}, "
                      f"max difference {figures['max_abs_diff']:.2e} (tolerance {tolerance:g})", parity=figures,
                      graph=graph)
    return ServingManifest(
        runtime="onnx", onnx_file=ONNX_FILE, graph_optimization=optimized, parity=figures, graph=graph,
        reason=f"ONNX answers what torch answers on {len(records) - probes} test records and {probes} length "
               f"probes: same labels, max difference {figures['max_abs_diff']:.2e} (tolerance {tolerance:g})")


def _quantized(serving: ServingManifest, tolerance: float) -> ServingManifest:
    """``--quantize int8``: ``serving`` with the int8 graph as its top-level file where the int8 path passed its
    dev gate; QuantizationRefused (with the gate's figures) otherwise. The other gated paths stay: a worker
    still chooses among them by its CPU (``runtimes.precision``), and ``SMTX_PRECISION=int8`` pins int8."""
    int8 = next(path for path in serving.paths if path.name == "onnx-int8")
    if not int8.passed:
        if int8.figures is None:
            raise QuantizationRefused(f"int8 quantization refused: {int8.reason}")
        raise QuantizationRefused(refusal(int8.figures), int8.figures)
    figures = int8.figures or {}
    reason = (f"{serving.reason}; int8 {figures['metric']} {figures['int8']:.4f} against fp32 "
              f"{figures['fp32']:.4f} (loss {figures['loss']:.4g}, tolerance {tolerance:g})")
    return replace(serving, onnx_file=INT8_FILE, reason=reason, quantization={"type": "int8", **figures})


def _model_card(payload: Path, serving: ServingManifest, task: Resolved) -> None:
    """The archive's model card (README.md, from training) with its "Served precisions" section appended."""
    card = payload / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {task.spec.task} model\n"
    card.write_text(text.rstrip("\n") + "\n" + model_card_section(serving.paths, task.kind.primary_metric),
                    encoding="utf-8")


def _run_archiver(name: str, payload: Path, config_file: Path, export: Path) -> Path:
    export.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "model_archiver.model_packaging", "--model-name", name, "--version", "1.0",
           "--handler", str(payload / HANDLER_FILE), "--extra-files", str(payload), "--config-file", str(config_file),
           "--archive-format", "no-archive", "--export-path", str(export), "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torch-model-archiver failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return export / name


def _zip(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())


#: the small files a reader of model.tar.gz on S3 wants (the launcher: serving.json for describe and serverless
#: sizing, task_spec.json and metrics.json for the registry), first in the stream: it stops before the model files
LEADING = (SERVING_FILE, "task_spec.json", "metrics.json", "README.md", "config.json")


def _tar(src: Path, dst: Path) -> None:
    with tarfile.open(dst, "w:gz") as tf:
        for path in sorted(src.rglob("*"), key=lambda p: (p.relative_to(src).as_posix() not in LEADING, p)):
            tf.add(path, arcname=path.relative_to(src).as_posix(), recursive=False)


def build(checkpoint: str | Path, out: str | Path, name: str | None = None,
          settings: ArchiveSettings = ArchiveSettings(), runtime: RuntimeOptions = RuntimeOptions()) -> Built:
    """Check the checkpoint, choose its runtime, stage it with the code, and write both archives into ``out``.

    Raises CheckpointError or ModelError (``runtimes.model_source``) for a checkpoint that cannot be archived, and
    QuantizationRefused when int8 was asked for and cannot be served; either way nothing is written to ``out``.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    # the spec, its task's row and its family, resolved once here and passed along (not looked up again by name)
    task = read_checkpoint(checkpoint)
    # transformers can load it as a model with its head (no checkpoint code) and its tokenizer loads: ModelError
    # otherwise, before anything is staged
    check_model(str(checkpoint), task.kind.head)
    name = safe_name(name or checkpoint.name)
    with tempfile.TemporaryDirectory(prefix="smtx-archive-") as tmp:
        tmp_path = Path(tmp)
        _payload(checkpoint, tmp_path / "payload")
        serving = choose_runtime(checkpoint, task, tmp_path / "payload", runtime)
        write_serving(tmp_path / "payload", serving)
        out.mkdir(parents=True, exist_ok=True)
        config_file = tmp_path / "model-config.yaml"
        config_file.write_text(settings.model_config_yaml(), encoding="utf-8")
        staged = _run_archiver(name, tmp_path / "payload", config_file, tmp_path / "export")
        if not (staged / "model-config.yaml").is_file():  # keep it at the root, where TorchServe looks
            shutil.copy2(config_file, staged / "model-config.yaml")
        read_checkpoint(staged)  # what will be served passes the same checks
        mar, tarball = out / f"{name}.mar", out / "model.tar.gz"
        partial = (mar.with_suffix(".mar.partial"), tarball.with_suffix(".partial"))
        try:
            _zip(staged, partial[0])
            _tar(staged, partial[1])
        except BaseException:  # a full disk or an interrupt mid-write: no half-written archive is left in out
            for path in partial:
                path.unlink(missing_ok=True)
            raise
        partial[0].replace(mar)
        partial[1].replace(tarball)
    log.info("%s model archived: %s and %s (runtime %s)", task.spec.task, mar, tarball, serving.runtime)
    return Built(mar=mar, tarball=tarball, runtime=serving.runtime, serving=serving)
