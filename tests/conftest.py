"""Shared fixtures: tiny base models per architecture and small copies of the example data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "data"
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: (architecture, task, example folder, use_bbox) pairs the training smoke test covers
PAIRS = [(arch, task, task, False) for arch in ("bert", "distilbert", "longformer")
         for task in ("ner", "classif", "multilabel-classif", "regression", "pair-classif")]
PAIRS += [("layoutlm", "ner", "layoutlm-ner", True)]


def subset(src: Path, dst: Path, sizes: dict[str, int]) -> Path:
    """The first rows of each example file (header kept): enough to train a few steps."""
    dst.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        lines = (src / f"{split}.csv").read_text(encoding="utf-8").splitlines()
        (dst / f"{split}.csv").write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    return dst


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(arch)`` -> a saved tiny random base model of that architecture (made once)."""
    from tiny_models import make_base_model

    root, made = tmp_path_factory.mktemp("tiny-models"), {}

    def get(arch: str) -> Path:
        if arch not in made:
            made[arch] = make_base_model(arch, root / arch)
        return made[arch]

    return get


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """``small_data(folder)`` -> 32/12/12-row copies of ``examples/data/<folder>``."""
    root = tmp_path_factory.mktemp("small-data")

    def get(folder: str) -> Path:
        dst = root / folder
        return dst if dst.exists() else subset(EXAMPLES / folder, dst, {"train": 32, "dev": 12, "test": 12})

    return get
