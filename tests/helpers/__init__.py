"""What the tests share besides fixtures: where the repository is, and the example data cut to a few rows.

The modules here are imported as ``tests.helpers.<module>`` (``tiny_models``, ``fixtures_tokenizers``,
``handler_fixtures``, ``serving_fixtures``, ``docker_fixtures``, ``moto_sagemaker``, ``launcher_account``,
``opt_ml``); nothing edits ``sys.path``. This module imports only the standard library: tests/sdk's own venv
loads it through tests/conftest.py.
"""
from __future__ import annotations

from pathlib import Path

#: the repository root (tests/helpers/__init__.py is two levels below it): every test path starts here
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "data"


def subset(src: Path, dst: Path, sizes: dict[str, int]) -> Path:
    """The first rows of each example file (header kept): enough to train a few steps."""
    dst.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        lines = (src / f"{split}.csv").read_text(encoding="utf-8").splitlines()
        (dst / f"{split}.csv").write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    return dst
