"""Serving on a GPU, decided without one: the device / runtime / precision choice from fake facts, the fp16 gate
from fake predictions, the GPU's token-bounded micro-batches, and one worker per visible GPU."""
from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.serve import visible_gpus, with_default_workers
from handlers.service import Settings, for_device
from handlers.ts_handler import batch_fields_named
from runtimes.cpu import read_cpu
from runtimes.device import (
    FP16_TOLERANCE,
    GPU_MAX_BATCH_SIZE,
    GPU_MAX_TOKENS,
    ServePlan,
    ServingFacts,
    choose,
    gate_precision,
    probe,
    torch_needed,
)
from runtimes.parity import CheckSetError, parity, read_check_set
from tasks.batching import plan_batches
from tasks.serving_contract import ServeConfig
from tasks.serving_manifest import ServingManifest
from tasks.spec import TaskSpec

TORCH, ONNX = ServingManifest(runtime="torch"), ServingManifest(runtime="onnx", onnx_file="model.onnx")
T4 = ServingFacts(gpu_id=0, weights=True, cuda=True, gpu_count=1, name="Tesla T4", capability=(7, 5),
                  cuda_build="12.4")
SPEC = TaskSpec(task="classif", model_type="bert", labels=("a", "b"))


# -- the choice ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("serving, runtime", [(ServingManifest(), "torch"), (TORCH, "torch"), (ONNX, "onnx")])
def test_without_a_gpu_the_archive_serves_as_today(serving, runtime):
    plan = choose(serving, ServingFacts(gpu_id=None, weights=True))
    assert (plan.device, plan.runtime, plan.precision) == ("cpu", runtime, "fp32")
    assert plan.describe() == f"serving on the CPU with {runtime} fp32: TorchServe assigned this worker no GPU"


def test_a_gpu_serves_torch_fp16_pending_the_gate():
    plan = choose(TORCH, T4)
    assert (plan.device, plan.runtime, plan.precision) == ("cuda:0", "torch", "fp16")
    assert plan.describe().startswith("serving on cuda:0 (Tesla T4, sm_75) with torch fp16: torch serves on the GPU")


def test_an_onnx_archive_that_kept_its_weights_serves_torch_on_the_gpu():
    plan = choose(ONNX, ServingFacts(**{**T4.__dict__, "gpu_id": 1, "gpu_count": 2}))
    assert (plan.device, plan.runtime, plan.precision) == ("cuda:1", "torch", "fp16")


def test_a_weightless_onnx_archive_on_a_gpu_serves_onnx_on_the_cpu_and_says_why():
    plan = choose(ONNX, ServingFacts(gpu_id=0, weights=False))
    assert (plan.device, plan.runtime, plan.precision) == ("cpu", "onnx", "fp32")
    assert "only the ONNX graph" in plan.reason and "--keep-weights" in plan.reason


@pytest.mark.parametrize("facts, why", [
    (ServingFacts(gpu_id=0, weights=True, cuda=False), "this torch is a CPU build"),
    (ServingFacts(gpu_id=0, weights=True, cuda=False, cuda_build="12.4"), "a CUDA 12.4 build) sees no CUDA device"),
    (ServingFacts(**{**T4.__dict__, "gpu_id": 1}), "sees only 1 CUDA device(s) (check CUDA_VISIBLE_DEVICES)"),
])
def test_an_assigned_gpu_torch_cannot_use_serves_on_the_cpu_in_one_line(facts, why):
    plan = choose(ONNX, facts)
    assert (plan.device, plan.runtime, plan.precision) == ("cpu", "onnx", "fp32")
    line = plan.describe()
    assert line.startswith(f"serving on the CPU with onnx fp32: TorchServe assigned GPU {facts.gpu_id}, but")
    assert why in line and "\n" not in line


def test_a_gpu_without_tensor_cores_serves_fp32():
    plan = choose(TORCH, ServingFacts(**{**T4.__dict__, "name": "Tesla P4", "capability": (6, 1)}))
    assert (plan.device, plan.precision) == ("cuda:0", "fp32") and "tensor cores" in plan.reason


def test_torch_is_asked_only_for_a_worker_with_a_gpu_and_weights():
    assert [torch_needed(g, w) for g, w in ((None, True), (0, False), (0, True))] == [False, False, True]
    cpu = read_cpu()  # the CPU is always read (no torch needed): it picks the CPU path
    on_cpu = {"cpu_model": cpu.model, "cpu_kind": cpu.kind}
    assert probe(None, True) == ServingFacts(gpu_id=None, weights=True, **on_cpu)  # no torch asked, none imported
    assert probe(0, False) == ServingFacts(gpu_id=0, weights=False, **on_cpu)


def test_the_probe_reads_what_torch_sees():
    import torch

    facts = probe(0, True)
    assert facts.cuda == torch.cuda.is_available() and facts.cuda_build == torch.version.cuda
    assert facts.gpu_count == (torch.cuda.device_count() if facts.cuda else 0)


# -- the fp16 gate ------------------------------------------------------------------------------------------------
def pred(label: str, a: float) -> dict:
    return {"pred": label, "proba": max(a, 1 - a), "scores": {"a": a, "b": 1 - a}}


EXPECTED = [pred("a", 0.9), pred("b", 0.2), pred("a", 0.6)]


@pytest.mark.parametrize("got, passed, worst", [
    ([pred("a", 0.905), pred("b", 0.197), pred("a", 0.6)], True, 5e-3),  # fp16-size noise
    ([pred("a", 0.92), pred("b", 0.2), pred("a", 0.6)], False, 2e-2),  # a probability too far
    ([pred("a", 0.9), pred("b", 0.2), pred("b", 0.599)], False, 1e-3),  # a changed label, however close
])
def test_the_fp16_gate_keeps_fp16_only_where_labels_agree_and_probabilities_are_close(got, passed, worst):
    figures = parity(SPEC, EXPECTED, got, FP16_TOLERANCE)
    assert figures["passed"] is passed and figures["max_abs_diff"] == pytest.approx(worst)
    plan = gate_precision(choose(TORCH, T4), figures)
    assert plan.precision == ("fp16" if passed else "fp32") and plan.gate == figures
    assert plan.device == "cuda:0" and plan.runtime == "torch"
    assert ("passed the parity gate" if passed else "fp16 failed the parity gate") in plan.reason


def test_fp16_without_a_check_set_never_serves():
    plan = gate_precision(choose(TORCH, T4), None)
    assert (plan.device, plan.precision, plan.gate) == ("cuda:0", "fp32", None)
    assert "no check set" in plan.reason and "fp32 serves" in plan.reason


def test_the_gate_leaves_an_fp32_plan_alone():
    plan = choose(TORCH, ServingFacts(gpu_id=None, weights=True))
    assert gate_precision(plan, None) is plan


def test_a_broken_check_set_names_its_file_and_line(tmp_path: Path):
    (tmp_path / "parity_check.jsonl").write_text('{"record": {"text": "ok"}, "expected": {"pred": "a"}}\n'
                                                 '{"record": {"txt": "no text"}, "expected": {}}\n')
    with pytest.raises(CheckSetError, match=r"parity_check.jsonl:2: not a check record"):
        read_check_set(tmp_path, SPEC)
    assert read_check_set(tmp_path / "elsewhere", SPEC) is None


# -- micro-batches on the GPU -------------------------------------------------------------------------------------
def test_settings_follow_the_device_unless_the_environment_named_them():
    cpu, gpu = ServePlan("cpu", "torch", "fp32", "-"), ServePlan("cuda:0", "torch", "fp16", "-")
    assert for_device(Settings(), cpu) == Settings()
    on_gpu = for_device(Settings(), gpu)
    assert (on_gpu.max_batch_size, on_gpu.max_tokens) == (GPU_MAX_BATCH_SIZE, GPU_MAX_TOKENS)
    named = Settings(max_tokens=512, named=batch_fields_named({"SMTX_MAX_BATCH_TOKENS": "512"}))
    assert (for_device(named, gpu).max_batch_size, for_device(named, gpu).max_tokens) == (GPU_MAX_BATCH_SIZE, 512)
    assert batch_fields_named({"SMTX_MICRO_BATCH_SIZE": "8", "SMTX_MAX_BATCH_TOKENS": " "}) == {"max_batch_size"}


@pytest.mark.parametrize("lengths", [[8] * 10_000, [512] * 300, [512] * 100 + [40] * 3000 + [8] * 5000])
def test_gpu_micro_batches_fill_the_token_budget_whatever_the_lengths(lengths):
    batches = plan_batches(lengths, GPU_MAX_BATCH_SIZE, GPU_MAX_TOKENS)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches[:-1]:
        longest = max(lengths[i] for i in batch)
        # full: within the budget, and one more record of the same length would not fit (records never bind)
        assert len(batch) * longest <= GPU_MAX_TOKENS < (len(batch) + 1) * longest
        assert len(batch) < GPU_MAX_BATCH_SIZE or len(batch) * longest == GPU_MAX_TOKENS


# -- one worker per GPU -------------------------------------------------------------------------------------------
DEV = ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-modeset", "null"]


@pytest.mark.parametrize("env, devices, gpus", [
    ({}, DEV, 2), ({}, ["null", "tty"], 0), ({"CUDA_VISIBLE_DEVICES": "1"}, DEV, 1),
    ({"CUDA_VISIBLE_DEVICES": ""}, DEV, 0), ({"CUDA_VISIBLE_DEVICES": "-1"}, DEV, 0),
    ({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, DEV, 1), ({"CUDA_VISIBLE_DEVICES": "GPU-8a1f,GPU-77c2"}, DEV, 2),
    ({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, DEV, 2), ({"CUDA_VISIBLE_DEVICES": "0"}, [], 0),
])
def test_visible_gpus_without_torch(env, devices, gpus):
    assert visible_gpus(env, devices) == gpus


@pytest.mark.parametrize("env, gpus, workers", [
    ({}, 0, 1), ({}, 1, 1), ({}, 4, 4), ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 4, 2),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, 8, 1), ({"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}, 0, 3),
])
def test_one_worker_per_gpu_unless_the_environment_says_otherwise(env, gpus, workers):
    config = with_default_workers(ServeConfig.from_env(env), gpus)
    assert config.workers == workers
    assert config.overrides()["minWorkers"] == config.overrides()["maxWorkers"] == workers
