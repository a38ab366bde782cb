"""Session fixtures (tiny base models per architecture, small copies of the example data) and the tier summary.

The tests live in tier folders: ``unit/<package>/`` (pure), ``model/`` (tiny checkpoints in process), ``server/``
(a real TorchServe), ``docker/`` (the image in a real engine), ``launcher/`` (the command line against moto).
``pytest_terminal_summary`` ends every run with one line per tier, so that a green run cannot hide a tier that
skipped (no Docker engine, say). This module imports only the standard library and pytest at the top: tests/sdk's
own venv loads it too.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import EXAMPLES, subset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Most tests compare what serves with torch's answers within the parity tolerance (1e-5), which only the fp32
# paths keep: they pin ONNX Runtime's fp32 path, the archive's top-level graph. The default, auto (the fastest gated
# path for this CPU: bf16 or int8, whose answers differ from fp32 by more), and every other path are tested on
# their own, with SMTX_PRECISION or Settings(precision=...) set in the test (tests/model/test_precisions.py,
# tests/server/test_precision_served.py). Docker's containers do not inherit it: they serve auto.
os.environ.setdefault("SMTX_PRECISION", "onnx-fp32")

TESTS = Path(__file__).resolve().parent
#: the tier folders, in the order the summary names them (tests/sdk is `make test-sdk`'s own tier)
TIERS = ("unit", "model", "server", "docker", "launcher", "sdk")
#: tiers that skip by design outside their own command (``make test-sdk``): named in the line, never flagged
OPT_IN = ("sdk",)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(arch)`` -> a saved tiny random base model of that architecture (made once)."""
    from tests.helpers.tiny_models import make_base_model

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


def tier_of(nodeid: str) -> str:
    """The tier folder a test id lies in (``tests/model/test_onnx.py::...`` -> ``model``), whatever the rootdir."""
    parts = Path(nodeid.split("::", 1)[0]).parts
    inside = parts[parts.index("tests") + 1:] if "tests" in parts else parts
    return inside[0] if len(inside) > 1 else "other"


def tier_counts(stats: dict[str, list]) -> dict[str, Counter]:
    """Outcomes per tier from the terminal reporter's stats (which file each report under its outcome)."""
    tiers: dict[str, Counter] = {}
    for outcome in ("passed", "failed", "skipped", "error", "xfailed", "xpassed"):
        for report in stats.get(outcome, []):
            if hasattr(report, "nodeid"):
                tiers.setdefault(tier_of(report.nodeid), Counter())[outcome] += 1
    return tiers


def tier_lines(tiers: dict[str, Counter], skip_reasons: dict[str, Counter]) -> list[str]:
    """"tiers: unit 520 passed; docker 12 skipped" and, loudly, a line for each tier where nothing ran."""
    order = sorted(tiers, key=lambda t: (TIERS.index(t) if t in TIERS else len(TIERS), t))
    parts = [f"{tier} " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(tiers[tier].items())) for tier in order]
    lines = ["tiers: " + "; ".join(parts)] if parts else []
    for tier in order:
        ran = sum(n for outcome, n in tiers[tier].items() if outcome != "skipped")
        if tiers[tier]["skipped"] and not ran and tier not in OPT_IN:
            reasons = "; ".join(reason for reason, _ in skip_reasons.get(tier, Counter()).most_common(2))
            lines.append(f"{tier}: {tiers[tier]['skipped']} SKIPPED, none ran ({reasons})")
    return lines


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """One line per run saying which tiers ran and how many tests each passed, failed and skipped.

    A wrapper, outermost: what follows the ``yield`` prints after pytest's own summary (``-rs`` included), just
    above the final count, where nobody scrolls past it."""
    yield
    tiers = tier_counts(terminalreporter.stats)
    reasons: dict[str, Counter] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reasons.setdefault(tier_of(report.nodeid), Counter())[reason.removeprefix("Skipped: ")] += 1
    for line in tier_lines(tiers, reasons):
        loud = "SKIPPED" in line
        terminalreporter.write_line(line, red=loud, bold=loud)
