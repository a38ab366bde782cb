"""`make bench`'s training rows: the jobs each CPU kind gets (bf16 only on bf16 units), and the report's ratios."""
from __future__ import annotations

from pathlib import Path

from bench.__main__ import training_jobs
from bench.models import EMBEDDED, BenchModel
from bench.report import markdown
from bench.training_speed import ROWS
from runtimes.cpu import CpuFacts

GENOA = CpuFacts(model="AMD EPYC 9R14", flags=frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
ROME = CpuFacts(model="AMD EPYC 7R32", flags=frozenset({"avx2"}))
MINILM = BenchModel(EMBEDDED, Path("/unused/minilm"), "bert")
MPNET = BenchModel("/models/mpnet", Path("/models/mpnet"), "mpnet")


def test_a_bf16_cpu_runs_every_row_with_its_precision() -> None:
    jobs = training_jobs(60, MINILM, GENOA)
    assert list(jobs) == list(ROWS)
    assert jobs["training/ours-bf16"] == {"label": "training/ours-bf16", "kind": "training", "impl": "ours",
                                          "precision": "bf16", "steps": 60, "batch": 16}
    assert jobs["training/ours-fp32"]["precision"] == "no"
    # ours as make train runs it keeps training's own default (auto); the plain Trainer has no precision to set
    assert "precision" not in jobs["training/ours"] and "precision" not in jobs["training/plain"]
    assert all("model" not in job for job in jobs.values()), "the embedded MiniLM is training's default"


def test_a_cpu_without_bf16_units_skips_the_bf16_row_saying_why() -> None:
    jobs = training_jobs(8, MPNET, ROME)
    assert jobs["training/ours-bf16"] == {"skipped": "this CPU (avx2: AMD EPYC 7R32) has no bf16 in hardware (AMX "
                                                     "or AVX-512 bf16), where training refuses mixed_precision=bf16"}
    assert {label for label, job in jobs.items() if "skipped" not in job} == set(ROWS) - {"training/ours-bf16"}
    assert all(job["model"] == "/models/mpnet" and job["steps"] == 8
               for job in jobs.values() if "skipped" not in job)


def _report(runs: dict[str, dict[str, object]]) -> str:
    return markdown({"runs": {"gemm": {"gflops": 100.0}, **runs}, "tasks": ["classif"]})


def _row(table: str, starts: str) -> str:
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {starts}")]
    return line


def test_the_report_shows_bf16_over_fp32_and_ours_over_plain_at_the_same_precision() -> None:
    table = _report({
        "training/ours": {"train_samples_per_second": 30.0, "step_samples_per_second": 36.0, "precision": "bf16"},
        "training/plain": {"train_samples_per_second": 10.0, "step_samples_per_second": 12.0},
        "training/ours-fp32": {"train_samples_per_second": 20.0, "step_samples_per_second": 24.0,
                               "precision": "no", "cpu_kind": "avx512_bf16"},
        "training/ours-bf16": {"train_samples_per_second": 30.0, "step_samples_per_second": 36.0,
                               "precision": "bf16", "cpu_kind": "avx512_bf16"},
    })
    # ours in fp32 against the plain Trainer (fp32), not ours in bf16
    assert "| 2.00x | >= 1x |" in _row(table, "training samples/s: make train / plain Trainer, both fp32 (end to end")
    assert "| 1.50x |" in _row(table, "training samples/s: bf16 autocast / fp32, make train on avx512_bf16 (end")
    assert "| 1.50x |" in _row(table, "training samples/s: bf16 autocast / fp32, make train on avx512_bf16 (training")
    assert "`training/ours-bf16`: train_samples_per_second=30.00, step_samples_per_second=36.00, precision=bf16, " \
           "cpu_kind=avx512_bf16" in table


def test_the_report_says_why_the_bf16_row_was_skipped() -> None:
    table = _report({"training/ours-fp32": {"train_samples_per_second": 20.0, "cpu_kind": "avx2"},
                     "training/ours-bf16": {"skipped": "this CPU (avx2: X) has no bf16 in hardware"}})
    assert "| skipped |" in _row(table, "training samples/s: bf16 autocast / fp32, make train on avx2 (end")
    assert "`training/ours-bf16`: skipped: this CPU (avx2: X) has no bf16 in hardware" in table
