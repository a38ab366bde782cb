"""``python -m quality --quick`` end to end: download (or reuse the cache), convert, train every variant a few
steps on a tiny subset of each corpus, score, and write the JSON and markdown."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from quality import ours
from tests.helpers import ROOT


@pytest.mark.slow
def test_quick_run_writes_every_corpus_and_variant(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "quality", "--quick", "--results", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (found,) = tmp_path.glob("quality-*-quick.json")
    result = json.loads(found.read_text(encoding="utf-8"))
    assert set(result["corpora"]) == {"wnut16-ner", "bbc-news", "wnut16-types"}
    # ours-fp32 beside ours where ours trains in bf16 autocast (a CPU with bf16 units), else ours alone
    variants = (*ours.variants_here(), "recipe", "recipe-defaults")
    assert {(r["corpus"], r["variant"]) for r in result["runs"]} == {
        (c, v) for c in result["corpora"] for v in variants}
    for run in result["runs"]:
        headline = {"ner": "f1", "classif": "accuracy", "multilabel-classif": "f1_micro"}[run["task"]]
        assert 0.0 <= run["metrics"][headline] <= 1.0 and run["train_seconds"] > 0
    assert result["corpora"]["bbc-news"]["test_words_beyond_max_seq_length"] > 0  # news articles are long
    # the served archive, sent the test split through /invocations, scores what training's evaluation scored
    assert all(info["served"]["equal"] for info in result["corpora"].values()), result["corpora"]
    table = found.with_suffix(".md").read_text(encoding="utf-8")
    assert table.startswith("Batch 8,")
    if "ours-fp32" in variants:
        assert {r["precision"] for r in result["runs"] if r["variant"] == "ours"} == {"bf16"}
        assert {r["precision"] for r in result["runs"] if r["variant"] == "ours-fp32"} == {"no"}
        assert "| corpus | metric | ours' precision | ours dev | ours-fp32 dev |" in table
        assert all(f"| {corpus} | " in table.split("ours-fp32 dev")[1] for corpus in result["corpora"])
    assert all(info["setting"]["steps"] == 2 for info in result["corpora"].values())
    # two runs side by side on a machine with two cores or more (the default), each with its share of the cores
    assert result["setting"]["jobs"] == min(2, os.cpu_count() or 1)
