"""bench.gpu_check: without CUDA one line and exit 0; its parity comparison and ratios as pure functions."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import gpu_check
from tests.helpers import ROOT


def test_without_cuda_it_skips_in_one_line_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: make gpu-check runs for real")
    before = set((ROOT / "bench" / "results").glob("gpu-check-*.json"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--tasks", "classif"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    build = "a CPU build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
    expected = f"gpu-check: skipped: no CUDA GPU visible (torch {torch.__version__} is {build})"
    assert proc.stdout.splitlines() == [expected]
    assert set((ROOT / "bench" / "results").glob("gpu-check-*.json")) == before


def test_a_bad_argument_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--tasks", "translation"])
    assert info.value.code == 2


def test_parity_passes_on_equal_answers_and_fails_on_a_changed_label():
    expected = [{"pred": "sport", "proba": 0.9}, {"pred": "news", "proba": 0.6}]
    same = gpu_check._compare("classif", [dict(p) for p in expected], expected)
    assert same["passed"] and same["same_labels"] and same["max_proba_gap"] == 0.0
    close = gpu_check._compare("classif", [{"pred": "sport", "proba": 0.90002}, expected[1]], expected)
    assert close["passed"] and close["max_proba_gap"] == pytest.approx(2e-5)
    changed = gpu_check._compare("classif", [{"pred": "news", "proba": 0.9}, expected[1]], expected)
    assert not changed["passed"] and not changed["same_labels"]
    missing = gpu_check._compare("classif", expected[:1], expected)
    assert not missing["passed"]


def test_parity_reads_ner_and_regression_answers():
    ner = [{"pred": ["B-PER", "O"], "proba": [0.8, 0.99]}]
    assert gpu_check._compare("ner", [{"pred": ["B-PER", "O"], "proba": [0.8, 0.5]}], ner)["max_proba_gap"] == \
        pytest.approx(0.49)
    regression = gpu_check._compare("regression", [{"pred": 1.5}], [{"pred": 1.50001}])
    assert regression["passed"] and regression["max_proba_gap"] == pytest.approx(1e-5)
    assert not gpu_check._compare("regression", [{"pred": 2.0}], [{"pred": 1.5}])["passed"]


def test_ratios_against_the_issue_targets():
    runs = {"classif/gpu-direct/fp16": {"records_per_s": 3000.0, "latency": {"p50_ms": 2.0}},
            "classif/gpu-direct/fp32": {"records_per_s": 1000.0},
            "classif/gpu-pipeline-list": {"records_per_s": 500.0},
            "classif/cpu-direct": {"records_per_s": 100.0},
            "classif/served": {"latency_sequential": {"p50_ms": 4.5}}}
    out = gpu_check.ratios(runs)
    assert out["classif: gpu fp16 / gpu fp32 (target >= 2)"] == 3.0
    assert out["classif: gpu fp16 / hf pipeline on gpu (target >= 5)"] == 6.0
    assert out["classif: gpu fp16 / our cpu stack"] == 30.0
    assert out["classif: p50 /invocations - direct call, ms (target <= 3)"] == 2.5
    assert out["ner: gpu fp16 / gpu fp32 (target >= 2)"] is None  # rows not measured are None, not 0
