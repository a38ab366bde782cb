"""Where a worker serves, with which runtime and in which precision: decided once at load, logged in one line.

``probe()`` is the one place serving asks torch about the hardware, and it asks only when the answer can matter
(TorchServe assigned this worker a GPU and the archive has the weights torch needs): an ONNX-only archive, or a
worker without a ``gpu_id``, never imports torch for it. ``choose()`` is a pure function of those facts and the
archive's ``serving.json``; ``gate_precision()`` keeps fp16 only where the archive's check set says fp16 answers
what fp32 answered at archive time. ``ServePlan`` is the result: handed to the runtime, logged
(``describe()``), and exposed as ``InferenceService.serving``. Nothing below it asks ``torch.cuda`` again.

On a GPU torch serves (fp16, else fp32); ONNX Runtime's CUDA provider is not used. An archive whose weights were
dropped (ONNX serves) cannot use the GPU and serves ONNX on the CPU, saying so.

On the CPU, an archive that lists gated ``paths`` (serving.json schema 2) serves the one
``runtimes.precision.choose_path`` picks for this CPU's kind (``runtimes.cpu``) and ``SMTX_PRECISION``; an older
archive serves its ``runtime`` in fp32, as it always did. ``SMTX_PRECISION`` does not apply on a GPU, where the
fp16 gate decides.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from runtimes.cpu import read_cpu
from runtimes.precision import choose_path
from tasks.serving_manifest import ServingManifest

#: fp16 is kept where labels are equal and every probability (regression: the value) is within this of fp32.
#: Chosen, not measured: fp16 keeps ~3 significant digits, and softmax outputs of a BERT-size model in fp16 are
#: expected within ~1e-3 of fp32; 1e-2 leaves room without letting a changed label through (labels must be
#: equal). Regression compares the predicted value itself, in the target's units, against the same bound.
#: Unmeasured until a GPU run (make gpu-check); the archive records the value it was built with.
FP16_TOLERANCE = 1e-2
#: fp16 pays only with tensor cores (compute capability 7.0, Volta, and newer: T4 is 7.5); below, fp32 serves
FP16_CAPABILITY = (7, 0)
#: micro-batches on a GPU are bounded by tokens, not records: a record limit that never binds first, and a
#: token budget for a 16 GB T4 and a BERT-base-size model (sized, not measured; SMTX_MICRO_BATCH_SIZE and
#: SMTX_MAX_BATCH_TOKENS still win where set)
GPU_MAX_BATCH_SIZE = 4096
GPU_MAX_TOKENS = 32_768


@dataclass(frozen=True)
class ServingFacts:
    """What this worker was given, as plain data (``probe()`` reads it; tests write it)."""

    #: the GPU TorchServe assigned this worker (``context.system_properties["gpu_id"]``); None on the CPU
    gpu_id: int | None
    #: whether the archive carries safetensors weights (torch can serve it)
    weights: bool
    #: torch sees a CUDA device; None where torch was not asked (no GPU assigned, or no weights to run)
    cuda: bool | None = None
    #: CUDA devices torch sees
    gpu_count: int = 0
    #: the assigned GPU's name ("Tesla T4") and compute capability ((7, 5))
    name: str = ""
    capability: tuple[int, int] | None = None
    #: torch.version.cuda: None for a CPU build of torch
    cuda_build: str | None = None
    #: the CPU's model name and kind (``runtimes.cpu``): which gated path serves on it ("": not read)
    cpu_model: str = ""
    cpu_kind: str = "avx2"


@dataclass(frozen=True)
class ServePlan:
    """The decision: device, runtime, precision and why (plus the fp16 gate's figures once it ran)."""

    device: str  # "cpu" or "cuda:N"
    runtime: str  # "torch", "onnx" or "openvino"
    precision: str  # "fp32", "int8", "bf16" or "fp16"
    reason: str
    gpu_name: str = ""
    capability: tuple[int, int] | None = None
    #: the fp16 parity gate's figures (runtimes.parity.parity), where it ran
    gate: dict[str, Any] | None = None
    #: the model file the runtime opens (ONNX graph or OpenVINO IR); None: torch's weights
    file: str | None = None
    #: on the CPU: its model and kind ("AMD EPYC, avx512_bf16")
    cpu: str = ""

    def describe(self) -> str:
        """The one load log line: where, with what, and why."""
        where = f"the CPU ({self.cpu})" if self.device == "cpu" and self.cpu else \
            "the CPU" if self.device == "cpu" else self.device
        if self.gpu_name:
            sm = f", sm_{self.capability[0]}{self.capability[1]}" if self.capability else ""
            where = f"{self.device} ({self.gpu_name}{sm})"
        return f"serving on {where} with {self.runtime} {self.precision}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """For InferenceService.serving, the bench and the tests."""
        data = asdict(self)
        data["capability"] = list(self.capability) if self.capability else None
        return data


def torch_needed(gpu_id: int | None, weights: bool) -> bool:
    """Whether the facts need torch's answer: only a worker given a GPU, with weights to run on it."""
    return gpu_id is not None and weights


def choose(serving: ServingManifest, facts: ServingFacts, requested: str = "auto") -> ServePlan:
    """Device, runtime and the precision to try, from the archive's serving.json and the facts (pure).

    A GPU plan says fp16 where the GPU has tensor cores; ``gate_precision`` then keeps it or falls back to fp32.
    A CPU plan serves the gated path ``runtimes.precision.choose_path`` picks (``requested``: SMTX_PRECISION)."""
    if facts.gpu_id is None:
        return _on_cpu(serving, facts, requested, "TorchServe assigned this worker no GPU")
    gpu = f"GPU {facts.gpu_id}"
    if not facts.weights:
        return _on_cpu(serving, facts, requested, f"TorchServe assigned {gpu}, but this archive has only the ONNX "
                       "graph and torch needs the weights on a GPU (make archive --keep-weights keeps them)")
    if not facts.cuda:
        why = (f"torch (a CUDA {facts.cuda_build} build) sees no CUDA device" if facts.cuda_build
               else "this torch is a CPU build")
        return _on_cpu(serving, facts, requested, f"TorchServe assigned {gpu}, but {why}")
    if facts.gpu_id >= facts.gpu_count:
        return _on_cpu(serving, facts, requested, f"TorchServe assigned {gpu}, but torch sees only "
                       f"{facts.gpu_count} CUDA device(s) (check CUDA_VISIBLE_DEVICES)")
    fp16 = facts.capability is not None and facts.capability >= FP16_CAPABILITY
    reason = "torch serves on the GPU (ONNX Runtime's CUDA provider is not used)"
    if not fp16:
        reason += f"; fp16 needs tensor cores (compute capability {FP16_CAPABILITY[0]}.{FP16_CAPABILITY[1]}+)"
    return ServePlan(f"cuda:{facts.gpu_id}", "torch", "fp16" if fp16 else "fp32", reason, facts.name,
                     facts.capability)


def _on_cpu(serving: ServingManifest, facts: ServingFacts, requested: str, why: str) -> ServePlan:
    """The CPU plan: the gated path for this CPU where serving.json lists paths, else its runtime in fp32."""
    cpu = f"{facts.cpu_model}, {facts.cpu_kind}" if facts.cpu_model else ""
    if not serving.passed_paths:  # an archive from before paths (serving.json schema 1) serves as it always did
        precision = "int8" if serving.runtime == "onnx" and serving.quantization else "fp32"
        return ServePlan("cpu", serving.runtime, precision, why, file=serving.onnx_file, cpu=cpu)
    path, chosen = choose_path(serving.paths, facts.cpu_kind, requested)
    return ServePlan("cpu", path.runtime, path.precision, f"{why}; {chosen}", file=path.file, cpu=cpu)


def gate_precision(plan: ServePlan, figures: dict[str, Any] | None) -> ServePlan:
    """``plan`` with fp16 kept where ``figures`` (fp16 against the archive's fp32 answers) passed, else fp32 with
    why. ``figures`` None: the archive carries no check set, and unchecked fp16 never serves."""
    if plan.precision != "fp16":
        return plan
    if figures is None:
        return replace(plan, precision="fp32", reason="fp16 not checked: the archive carries no check set "
                       "(parity_check.jsonl; rebuild it with make archive), so fp32 serves")
    stated = (f"{figures['records']} records, label agreement {figures['label_agreement']:.2%}, max |dp| "
              f"{figures['max_abs_diff']:.1e}")
    if figures["passed"]:
        return replace(plan, gate=figures, reason=f"passed the parity gate ({stated} <= {figures['tolerance']:g})")
    return replace(plan, precision="fp32", gate=figures,
                   reason=f"fp16 failed the parity gate ({stated}; tolerance {figures['tolerance']:g}), fp32 serves")


def batch_budget(plan: ServePlan) -> tuple[int, int] | None:
    """(max_batch_size, max_tokens) for the plan's device where it differs from the CPU's, else None."""
    return None if plan.device == "cpu" else (GPU_MAX_BATCH_SIZE, GPU_MAX_TOKENS)


def probe(gpu_id: int | None, weights: bool) -> ServingFacts:
    """Ask torch about the assigned GPU, only where ``torch_needed``: the one hardware query of serving."""
    cpu = read_cpu()
    base = ServingFacts(gpu_id=gpu_id, weights=weights, cpu_model=cpu.model, cpu_kind=cpu.kind)
    if not torch_needed(gpu_id, weights):
        return base
    import torch

    if not torch.cuda.is_available():
        return replace(base, cuda=False, cuda_build=torch.version.cuda)
    count = torch.cuda.device_count()
    if gpu_id is None or gpu_id >= count:
        return replace(base, cuda=True, gpu_count=count, cuda_build=torch.version.cuda)
    props = torch.cuda.get_device_properties(gpu_id)
    return replace(base, cuda=True, gpu_count=count, name=props.name, capability=(props.major, props.minor),
                   cuda_build=torch.version.cuda)
