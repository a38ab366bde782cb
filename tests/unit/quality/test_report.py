"""quality.report: ours (bf16 by default on a bf16 CPU) against ours-fp32, dev and test, in points."""
from __future__ import annotations

from typing import Any

from quality.report import BF16_TOLERANCE_POINTS, aggregate, markdown

CORPORA: dict[str, dict[str, Any]] = {"bbc-news": {"task": "classif", "setting": {"steps": 2, "max_seq_length": 64},
                                                   "test_words_beyond_max_seq_length": 3}}
SETTING = {"batch_size": 8, "learning_rate": 5e-5, "seeds": [1, 2], "jobs": 2, "threads_per_job": 1}


def _run(variant: str, seed: int, test: float, dev: float | None, precision: str | None) -> dict[str, Any]:
    return {"corpus": "bbc-news", "task": "classif", "variant": variant, "seed": seed,
            "metrics": {"accuracy": test, "f1_macro": test}, "train_seconds": 1.0, "wall_seconds": 2.0,
            "dev_metrics": None if dev is None else {"accuracy": dev, "f1_macro": dev, "loss": 0.5},
            "precision": precision}


def test_ours_against_ours_fp32_on_dev_and_test_in_points() -> None:
    runs = [_run("ours", 1, 0.90, 0.800, "bf16"), _run("ours", 2, 0.92, 0.810, "bf16"),
            _run("ours-fp32", 1, 0.91, 0.806, "no"), _run("ours-fp32", 2, 0.91, 0.808, "no"),
            _run("recipe", 1, 0.88, None, None), _run("recipe", 2, 0.88, None, None)]
    summary = aggregate(runs)
    assert summary["bbc-news"]["ours"]["precision"] == "bf16"
    assert "dev" not in summary["bbc-news"]["recipe"]
    table = markdown(summary, CORPORA, SETTING)
    # dev: 80.50 against 80.70 (-0.20, within 0.3); test: 91.00 against 91.00
    assert (f"| bbc-news | accuracy | bf16 | 80.50 | 80.70 | -0.20 (within ±{BF16_TOLERANCE_POINTS}) | +0.00 |"
            in table)
    assert "| bbc-news | ours-fp32 | accuracy | 91.00 ± 0.00" in table


def test_a_dev_difference_beyond_the_tolerance_is_flagged() -> None:
    runs = [_run("ours", 1, 0.90, 0.80, "bf16"), _run("ours-fp32", 1, 0.90, 0.81, "no")]
    assert "| -1.00 (OUTSIDE ±0.3) |" in markdown(aggregate(runs), CORPORA, SETTING)


def test_without_ours_fp32_there_is_no_precision_table() -> None:
    runs = [_run("ours", 1, 0.90, 0.80, "no"), _run("recipe", 1, 0.88, None, None)]
    assert "ours-fp32 dev" not in markdown(aggregate(runs), CORPORA, SETTING)
