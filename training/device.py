"""Where a training run computes, and in which precision: decided once at training start, logged, recorded.

``probe()`` is the one place that asks torch, torchrun and ``runtimes.cpu`` about the hardware; it returns plain
``DeviceFacts``.
``choose()`` is a pure function of those facts and the config, so the whole decision (``auto`` -> bf16 / fp16 /
no, and every refusal) is tested without a GPU. The result, ``TrainDevice``, is handed down to the Trainer's
arguments and written into ``metrics.json``; nothing below it asks ``torch.cuda`` again.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from runtimes.cpu import read_cpu
from training.config import ConfigError, TrainConfig

#: bf16 runs natively from compute capability 8.0 (Ampere) on. torch.cuda.is_bf16_supported() says True on a T4
#: too (sm_75 emulates bf16 through fp32, slower than fp32 itself), so the capability is what decides here.
NATIVE_BF16_CAPABILITY = (8, 0)
#: the CPU kinds (``runtimes.cpu.KINDS``) on which mixed_precision=auto trains in bf16 autocast (fp32 weights,
#: bf16 matmuls). Both have bf16 in hardware; elsewhere bf16 is emulated and slower than fp32, so auto stays fp32.
#: Settled by the figures: `make bench` (training/ours-bf16 against training/ours-fp32, same run) and `make quality`
#: (ours against ours-fp32, dev metric within 0.3 pt). avx512_bf16, measured 2026-12-07 on an AMD EPYC: 1.38x
#: fp32's samples/s, BBC News dev equal to fp32's (test -0.15 pt); amx from its hardware, unmeasured here. A kind
#: that trains slower or scores lower in bf16 leaves this tuple; mixed_precision=bf16 still works on it.
CPU_BF16_KINDS = ("amx", "avx512_bf16")


def auto_bf16_on_cpu(kind: str, bf16: bool) -> bool:
    """mixed_precision=auto trains in bf16 on a CPU of this kind (``runtimes.cpu.CpuFacts.kind``) with bf16 in
    hardware or not (``CpuFacts.native_bf16``): both, and the kind in ``CPU_BF16_KINDS``. Torch-free, so that
    ``make quality`` asks it before any of its jobs imports torch."""
    return bf16 and kind in CPU_BF16_KINDS


class PrecisionError(ConfigError):
    """mixed_precision asks for something this device cannot do (a user's mistake, like any ConfigError)."""

    def __init__(self, message: str) -> None:
        super().__init__("mixed_precision", message)


@dataclass(frozen=True)
class DeviceFacts:
    """What the machine offers one training process, as plain data (``probe()`` reads it; tests write it)."""

    #: a CUDA GPU is visible to this process
    cuda: bool
    #: the GPU's name ("Tesla T4"), or "cpu"
    name: str
    #: GPUs visible on this host (0 on the CPU)
    gpus_per_host: int
    #: the GPU's compute capability, e.g. (7, 5) for a T4; None on the CPU
    capability: tuple[int, int] | None = None
    #: processes in the whole run (torchrun's WORLD_SIZE; 1 without torchrun)
    world_size: int = 1
    #: hosts in the run (WORLD_SIZE // LOCAL_WORLD_SIZE)
    hosts: int = 1
    #: torch.version.cuda: a CUDA build with no GPU visible trains on the CPU, and the log says why
    cuda_build: str | None = None
    #: the host CPU's kind (``runtimes.cpu.CpuFacts.kind``); the default is the kind that trains in fp32
    cpu_kind: str = "avx2"
    #: the host CPU does bf16 in hardware (AMX or AVX-512 bf16: ``runtimes.cpu.CpuFacts.native_bf16``)
    cpu_bf16: bool = False

    @property
    def native_bf16(self) -> bool:
        """bf16 is fast where training runs: a GPU of compute capability 8.0 or newer, or a CPU with bf16 units."""
        if not self.cuda:
            return self.cpu_bf16
        return self.capability is not None and self.capability >= NATIVE_BF16_CAPABILITY

    @property
    def cpu_auto_bf16(self) -> bool:
        """On the CPU, mixed_precision=auto trains in bf16 (``auto_bf16_on_cpu``)."""
        return auto_bf16_on_cpu(self.cpu_kind, self.cpu_bf16)

    def cpu_precision_reason(self) -> str:
        """Why mixed_precision=auto does what it does on this CPU (for the log line)."""
        if self.cpu_auto_bf16:
            return f"{self.cpu_kind} CPU, bf16 in hardware: auto trains in bf16 autocast"
        if self.cpu_bf16:
            return (f"{self.cpu_kind} CPU, bf16 in hardware, but not a kind auto trains in bf16 on "
                    "(training.device.CPU_BF16_KINDS): auto trains in fp32")
        return f"{self.cpu_kind} CPU, no bf16 in hardware (AMX or AVX-512 bf16): auto trains in fp32"


@dataclass(frozen=True)
class TrainDevice:
    """The decision: device, precision and the batch that one optimizer step really sees."""

    facts: DeviceFacts
    #: "bf16", "fp16" or "no"
    precision: str
    #: per-device batch x processes x gradient accumulation
    effective_batch_size: int
    per_device_batch_size: int
    gradient_accumulation_steps: int

    @property
    def kind(self) -> str:
        return "cuda" if self.facts.cuda else "cpu"

    def describe(self) -> str:
        """The one log line of a run's start that says where and how it trains."""
        f = self.facts
        if f.cuda:
            where = f"{f.gpus_per_host} x {f.name} (compute capability {f.capability[0]}.{f.capability[1]})" \
                if f.capability else f"{f.gpus_per_host} x {f.name}"
        elif f.cuda_build:
            where = (f"the CPU ({f.cpu_precision_reason()}): no CUDA GPU is visible (torch is a CUDA "
                     f"{f.cuda_build} build)")
        else:
            where = f"the CPU ({f.cpu_precision_reason()})"
        return (f"training on {where}; {f.world_size} process(es) on {f.hosts} host(s); precision {self.precision}; "
                f"effective batch size {self.effective_batch_size} = {self.per_device_batch_size} per device x "
                f"{f.world_size} process(es) x {self.gradient_accumulation_steps} accumulation step(s)")

    def trainer_arguments(self, persist: bool) -> dict[str, Any]:
        """The TrainingArguments this decision implies (``persist``: checkpoints are written during the run)."""
        return {
            "use_cpu": not self.facts.cuda,
            "bf16": self.precision == "bf16",
            # fp16 under the Trainer means torch.amp autocast plus a GradScaler (dynamic loss scaling)
            "fp16": self.precision == "fp16",
            # every host needs the checkpoints on its own disk to reload the best one and to resume; hosts of a
            # SageMaker job never share a filesystem
            "save_on_each_node": persist and self.facts.hosts > 1,
        }

    def to_dict(self) -> dict[str, Any]:
        """For metrics.json's ``info``: what trained this model."""
        facts = asdict(self.facts)
        facts["capability"] = list(self.facts.capability) if self.facts.capability else None
        return {"device": self.kind, "precision": self.precision,
                "effective_batch_size": self.effective_batch_size, **facts}


def resolve_precision(requested: str, facts: DeviceFacts) -> str:
    """``auto`` -> bf16 / fp16 / no for these facts; a precision they cannot do -> PrecisionError naming them."""
    if not facts.cuda:
        return _cpu_precision(requested, facts)
    if requested == "auto":
        return "bf16" if facts.native_bf16 else "fp16"
    if requested == "bf16" and not facts.native_bf16:
        cap = ".".join(map(str, facts.capability)) if facts.capability else "unknown"
        raise PrecisionError(f"mixed_precision='bf16' needs a GPU of compute capability 8.0 or newer (Ampere: A10G, "
                             f"A100, L4, H100); {facts.name} has {cap}; expected mixed_precision=auto, fp16 or no")
    return requested


def _cpu_precision(requested: str, facts: DeviceFacts) -> str:
    """The CPU's part of ``resolve_precision``: bf16 is autocast (the Trainer's bf16 with use_cpu, fp32 weights),
    on bf16 hardware only; fp16 needs a GPU's loss scaling and fast fp16 units, which no CPU has."""
    if requested == "auto":
        return "bf16" if facts.cpu_auto_bf16 else "no"
    if requested == "no" or (requested == "bf16" and facts.cpu_bf16):
        return requested
    gpu = (f"no CUDA GPU is visible (torch is a CUDA {facts.cuda_build} build)" if facts.cuda_build
           else "this torch has no CUDA support")
    allowed = "auto, bf16 or no" if facts.cpu_bf16 else "auto or no"
    if requested == "bf16":
        raise PrecisionError(f"mixed_precision='bf16' needs a CUDA GPU or a CPU with bf16 in hardware (AMX or "
                             f"AVX-512 bf16, e.g. ml.m7i), but training runs on the CPU ({facts.cpu_kind}: no bf16 "
                             f"units) and {gpu}; expected mixed_precision={allowed}")
    raise PrecisionError(f"mixed_precision={requested!r} needs a CUDA GPU, but training runs on the CPU "
                         f"({facts.cpu_kind}): {gpu}; expected mixed_precision={allowed}")


def choose(config: TrainConfig, facts: DeviceFacts) -> TrainDevice:
    """The run's device decision from its config and the machine's facts (pure)."""
    return TrainDevice(
        facts=facts, precision=resolve_precision(config.mixed_precision, facts),
        effective_batch_size=config.per_device_train_batch_size * facts.world_size * config.gradient_accumulation_steps,
        per_device_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )


def probe(env: Mapping[str, str] | None = None) -> DeviceFacts:
    """Ask torch (and torchrun's variables) what this process can use. The only hardware query of training."""
    import torch

    env = os.environ if env is None else env
    cpu = read_cpu()
    world = int(env.get("WORLD_SIZE", "1") or 1)
    local = int(env.get("LOCAL_WORLD_SIZE", str(world)) or world)
    hosts = max(1, world // max(1, local))
    if not torch.cuda.is_available():
        return DeviceFacts(cuda=False, name="cpu", gpus_per_host=0, world_size=world, hosts=hosts,
                           cuda_build=torch.version.cuda, cpu_kind=cpu.kind, cpu_bf16=cpu.native_bf16)
    # under torchrun each process owns the GPU of its local rank; without it, GPU 0
    index = int(env.get("LOCAL_RANK", "0") or 0) % torch.cuda.device_count()
    props = torch.cuda.get_device_properties(index)
    return DeviceFacts(cuda=True, name=props.name, gpus_per_host=torch.cuda.device_count(),
                       capability=(props.major, props.minor), world_size=world, hosts=hosts,
                       cuda_build=torch.version.cuda, cpu_kind=cpu.kind, cpu_bf16=cpu.native_bf16)
