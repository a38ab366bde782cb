"""The CPU path a worker serves: the fastest gated path its CPU runs natively, or what SMTX_PRECISION names."""
from __future__ import annotations

import pytest

from runtimes.device import ServingFacts, choose
from runtimes.precision import FASTEST, PrecisionRequestError, choose_path
from tasks.serving_contract import ServeConfig, ServeConfigError
from tasks.serving_manifest import ServingManifest, ServingPath

FILES = {"onnx-fp32": "model.onnx", "onnx-int8": "model.int8.onnx", "openvino-fp32": "model.openvino.xml",
         "openvino-bf16": "model.openvino.xml"}


def paths(*passed: str, refused: dict[str, str] | None = None) -> tuple[ServingPath, ...]:
    """Every path, passed where named; ``refused``: a failed path and its reason."""
    out = []
    for name, file in FILES.items():
        runtime, precision = name.split("-")
        reason = (refused or {}).get(name, "")
        out.append(ServingPath(name=name, runtime=runtime, precision=precision, file=file, passed=name in passed,
                               reason=reason or ("gated" if name in passed else "not gated")))
    return tuple(out)


ALL = paths(*FILES)


@pytest.mark.parametrize(("kind", "name"), [("amx", "openvino-bf16"), ("avx512_bf16", "onnx-int8"),
                                            ("vnni", "onnx-int8"), ("avx512", "onnx-fp32"), ("avx2", "onnx-fp32")])
def test_auto_serves_the_fastest_path_the_table_names_for_the_kind(kind: str, name: str) -> None:
    chosen, why = choose_path(ALL, kind)
    assert chosen.name == name == FASTEST[kind][0]
    assert f"the fastest gated path on this {kind} CPU" in why


def test_auto_skips_a_path_the_archive_refused() -> None:
    # AMX, with bf16 refused by its gate: int8 is next in the table
    chosen, why = choose_path(paths("onnx-fp32", "onnx-int8", "openvino-fp32"), "amx")
    assert chosen.name == "onnx-int8"
    assert "openvino-bf16 (not passed)" in why


def test_auto_never_picks_a_precision_the_cpu_does_not_run_natively() -> None:
    # every path passed, but an AVX2 CPU emulates bf16 and gains nothing from int8
    assert choose_path(ALL, "avx2")[0].precision == "fp32"
    assert choose_path(ALL, "vnni")[0].precision == "int8"
    assert all("bf16" not in name for kind in ("vnni", "avx512", "avx2") for name in FASTEST[kind])


def test_smtx_precision_names_the_precision() -> None:
    chosen, why = choose_path(ALL, "amx", "fp32")
    assert (chosen.name, why) == ("openvino-fp32", "SMTX_PRECISION=fp32")  # the faster fp32 on AMX
    assert choose_path(ALL, "avx2", "fp32")[0].name == "onnx-fp32"
    assert choose_path(ALL, "avx512_bf16", "bf16")[0].name == "openvino-bf16"


def test_a_precision_the_cpu_lacks_is_served_when_asked_and_the_log_says_so() -> None:
    chosen, why = choose_path(ALL, "avx2", "bf16")
    assert chosen.name == "openvino-bf16"
    assert "does not run natively" in why


def test_a_refused_precision_serves_the_auto_choice_and_says_why() -> None:
    gated = paths("onnx-fp32", "openvino-fp32", "openvino-bf16",
                  refused={"onnx-int8": "dev_f1 is 0.9760 with int8 against 1.0000 with fp32"})
    chosen, why = choose_path(gated, "avx512_bf16", "int8")
    assert chosen.name == "openvino-bf16"  # what auto serves on this kind without int8
    assert "SMTX_PRECISION=int8 was asked for, but no int8 path passed its gate" in why
    assert "onnx-int8: dev_f1 is 0.9760" in why


def test_a_bad_request_names_the_variable_and_its_values() -> None:
    with pytest.raises(PrecisionRequestError, match=r"SMTX_PRECISION='fp8' is not valid; expected one of "
                                                      r"\['auto', 'fp32', 'int8', 'bf16', 'onnx-fp32', "):
        choose_path(ALL, "amx", "fp8")
    with pytest.raises(ServeConfigError, match="SMTX_PRECISION"):
        ServeConfig.from_env({"SMTX_PRECISION": "fp8"})
    assert ServeConfig.from_env({}).precision == "auto"
    assert ServeConfig.from_env({"SMTX_PRECISION": "bf16"}).precision == "bf16"


def test_the_cpu_plan_serves_the_chosen_path_and_its_file() -> None:
    serving = ServingManifest(runtime="onnx", onnx_file="model.onnx", paths=ALL)
    facts = ServingFacts(gpu_id=None, weights=False, cpu_model="Intel Xeon Platinum 8488C", cpu_kind="amx")
    plan = choose(serving, facts)
    assert (plan.device, plan.runtime, plan.precision, plan.file) == ("cpu", "openvino", "bf16",
                                                                     "model.openvino.xml")
    assert plan.describe().startswith("serving on the CPU (Intel Xeon Platinum 8488C, amx) with openvino bf16: "
                                      "TorchServe assigned this worker no GPU; the fastest gated path")
    # a GPU the archive cannot use (weights dropped) serves the CPU path too
    plan = choose(serving, ServingFacts(gpu_id=0, weights=False, cpu_model="x", cpu_kind="avx2"), "int8")
    assert (plan.device, plan.runtime, plan.precision, plan.file) == ("cpu", "onnx", "int8", "model.int8.onnx")


def test_an_archive_without_paths_serves_its_runtime_in_fp32() -> None:
    # serving.json schema 1 (before paths): what it always did, whatever the CPU and SMTX_PRECISION
    facts = ServingFacts(gpu_id=None, weights=False, cpu_model="x", cpu_kind="amx")
    plan = choose(ServingManifest(runtime="onnx", onnx_file="model.int8.onnx", quantization={"type": "int8"}), facts,
                  "bf16")
    assert (plan.runtime, plan.precision, plan.file) == ("onnx", "int8", "model.int8.onnx")
    plan = choose(ServingManifest(runtime="onnx", onnx_file="model.onnx"), facts, "bf16")
    assert (plan.runtime, plan.precision, plan.file) == ("onnx", "fp32", "model.onnx")


def test_every_table_row_names_known_paths() -> None:
    for order in FASTEST.values():
        assert order and set(order) <= set(FILES)


def test_a_path_name_pins_that_path() -> None:
    assert choose_path(ALL, "amx", "onnx-fp32")[0].name == "onnx-fp32"
    chosen, why = choose_path(paths("onnx-fp32"), "amx", "openvino-bf16")
    assert chosen.name == "onnx-fp32" and "did not pass its gate (not gated)" in why
