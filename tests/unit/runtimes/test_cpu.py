"""The CPU kinds read from /proc/cpuinfo: each kind from the flags of a real CPU of that kind."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtimes.cpu import KINDS, parse_cpuinfo, read_cpu

#: the flag lines (matrix flags and a few around them) of the CPUs the kinds are named after
SAPPHIRE_RAPIDS = "fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni"
EPYC_GENOA = "fpu sse2 avx2 avx512f avx512_vnni avx512_bf16"
ICE_LAKE = "fpu sse2 avx2 avx512f avx512_vnni"
SKYLAKE = "fpu sse2 avx2 avx512f"
EPYC_ROME = "fpu sse2 avx2"


def cpuinfo(flags: str, model: str = "Some CPU") -> str:
    one = f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    return one + one.replace("processor\t: 0", "processor\t: 1")


@pytest.mark.parametrize(("flags", "kind", "bf16", "int8"), [
    (SAPPHIRE_RAPIDS, "amx", True, True), (EPYC_GENOA, "avx512_bf16", True, True), (ICE_LAKE, "vnni", False, True),
    (SKYLAKE, "avx512", False, False), (EPYC_ROME, "avx2", False, False), ("", "avx2", False, False)])
def test_kind_and_native_units(flags: str, kind: str, bf16: bool, int8: bool) -> None:
    facts = parse_cpuinfo(cpuinfo(flags))
    assert (facts.kind, facts.native_bf16, facts.native_int8) == (kind, bf16, int8)
    assert facts.kind in KINDS


def test_amx_needs_its_tiles_and_both_types() -> None:
    # a hypervisor that hides amx_tile leaves no usable AMX: the next kind down serves
    assert parse_cpuinfo(cpuinfo(SAPPHIRE_RAPIDS.replace(" amx_tile", ""))).kind == "avx512_bf16"


def test_avx_vnni_alone_is_vnni() -> None:
    assert parse_cpuinfo(cpuinfo("avx2 avx_vnni")).kind == "vnni"


def test_to_dict_names_the_model_and_only_matrix_flags() -> None:
    facts = parse_cpuinfo(cpuinfo(EPYC_GENOA, model="AMD EPYC 9R14"))
    assert facts.to_dict() == {"cpu_model": "AMD EPYC 9R14", "cpu_kind": "avx512_bf16",
                               "cpu_flags": ["avx512_bf16", "avx512_vnni", "avx512f", "avx2"]}


def test_a_machine_without_cpuinfo_has_no_flags(tmp_path: Path) -> None:
    read_cpu.cache_clear()
    try:
        facts = read_cpu(tmp_path / "missing")
        assert (facts.model, facts.flags, facts.kind) == ("unknown", frozenset(), "avx2")
    finally:
        read_cpu.cache_clear()


def test_this_machine_reads() -> None:
    # whatever this CPU is, it parses into a known kind with its real model name
    facts = read_cpu()
    assert facts.kind in KINDS
    assert facts.model != "unknown" or not Path("/proc/cpuinfo").is_file()
