"""bench/'s own code: the one percentile the bench and the soak report (linear interpolation, numpy's default),
and modules that import one another in one direction only."""
from __future__ import annotations

import ast
import random

import numpy as np
import pytest

from bench.stats import latency_summary, percentile
from tests.helpers import ROOT


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_percentile_is_numpys_linear_interpolation(n):
    rng = random.Random(n)
    values = [rng.lognormvariate(3, 0.5) for _ in range(n)]
    for q in (0, 1, 25, 50, 90, 95, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_percentile_interpolates_between_ranks_and_p50_is_the_median():
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([10, 20], 25) == 12.5
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_a_percentile_outside_0_to_100_is_refused(q):
    with pytest.raises(ValueError) as info:
        percentile([1.0, 2.0], q)
    assert str(info.value) == f"q={q!r} is not a percentile; expected a number from 0 to 100"


def test_latency_summary():
    samples = [float(v) for v in range(1, 101)]
    assert latency_summary(samples) == {"p50_ms": 50.5, "p95_ms": pytest.approx(95.05), "p99_ms": pytest.approx(99.01),
                                        "n": 100, "mean_ms": 50.5}
    assert latency_summary([]) == {"p50_ms": None, "p95_ms": None, "p99_ms": None, "n": 0, "mean_ms": None}


def _bench_imports() -> dict[str, set[str]]:
    """Which bench modules each bench module imports, at module level or inside functions."""
    root = ROOT / "bench"
    modules = {path.stem for path in root.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "bench":
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("bench."))
        graph[path.stem] = found & modules - {path.stem}
    return graph


def test_bench_modules_import_each_other_without_a_circle():
    graph = _bench_imports()
    assert graph["served"] and graph["soak"], graph  # the scan sees imports at all
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
