"""What this CPU's matrix units can do, read from ``/proc/cpuinfo``: the facts behind serving's precision choice
(``runtimes.precision``), training's bf16 on the CPU (``training.device``) and every bench result.

``parse_cpuinfo`` is pure (the tests give it the text of each CPU kind); ``read_cpu`` reads the file once per
process. A machine without the file (macOS) reads as a CPU with no known flags: fp32 everywhere, which is always
correct, never fast by accident.

The kinds, fastest matrix units first:
- ``amx``: Intel Sapphire Rapids and newer (SageMaker's ml.c7i, m7i, r7i): AMX tiles for bf16 and int8;
- ``avx512_bf16``: AVX-512 with bf16 dot products (AMD EPYC Genoa, Intel Cooper Lake) and VNNI for int8;
- ``vnni``: int8 dot products only (Intel Cascade Lake / Ice Lake: ml.c5, c6i, m6i; or AVX-VNNI);
- ``avx512``: AVX-512 without either;
- ``avx2``: the rest.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: the flags that decide a kind, and that every bench result records
MATRIX_FLAGS = ("amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2")
KINDS = ("amx", "avx512_bf16", "vnni", "avx512", "avx2")


@dataclass(frozen=True)
class CpuFacts:
    """One CPU's model name and the flags of ``MATRIX_FLAGS`` it has."""

    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic in hardware: AMX tiles or AVX-512 bf16 dot products (elsewhere bf16 is emulated, and
        torch bf16 ran 6x slower than fp32 on an AVX2-only EPYC)."""
        return "amx_bf16" in self.flags or "avx512_bf16" in self.flags

    @property
    def native_int8(self) -> bool:
        """int8 dot products in hardware: AMX, AVX-512 VNNI or AVX-VNNI."""
        return bool({"amx_int8", "avx512_vnni", "avx_vnni"} & self.flags)

    @property
    def kind(self) -> str:
        """One of ``KINDS``: the row of the precision table (``runtimes.precision``) this CPU uses."""
        if {"amx_tile", "amx_bf16", "amx_int8"} <= self.flags:
            return "amx"
        if "avx512_bf16" in self.flags:
            return "avx512_bf16"
        if self.native_int8:
            return "vnni"
        return "avx512" if "avx512f" in self.flags else "avx2"

    def to_dict(self) -> dict[str, object]:
        """For bench results and serving's log: the model, the kind and the matrix flags present."""
        return {"cpu_model": self.model, "cpu_kind": self.kind,
                "cpu_flags": [flag for flag in MATRIX_FLAGS if flag in self.flags]}


def parse_cpuinfo(text: str) -> CpuFacts:
    """The facts of ``/proc/cpuinfo``'s text (its first processor: a VM's vCPUs are all alike)."""
    model, flags = "unknown", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # "Features": Arm's name for the same line
            flags = frozenset(value.split()) & frozenset(MATRIX_FLAGS)
    return CpuFacts(model=model, flags=flags)


@functools.lru_cache(maxsize=1)
def read_cpu(path: Path = CPUINFO) -> CpuFacts:
    """This machine's facts (read once per process); a machine without the file has no known flags."""
    try:
        return parse_cpuinfo(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CpuFacts(model="unknown", flags=frozenset())
