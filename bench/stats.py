"""The one percentile every bench and soak figure is reported with.

Linear interpolation between the two nearest ranks (numpy's and pandas' default, Hyndman & Fan's method 7):
its p50 is the ordinary median, anyone recomputing a figure from raw samples with numpy gets the same number,
and the bench figures published so far (README, issue targets) were measured with it. The soak used a nearest-
index pick until it shared this function; on its ~1,000+ samples the two differ by less than one sample gap.
"""
from __future__ import annotations

import math
import statistics
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation; None when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"q={q!r} is not a percentile; expected a number from 0 to 100")
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99 and mean of latency samples in milliseconds, as the bench reports them."""
    return {"p50_ms": percentile(samples_ms, 50), "p95_ms": percentile(samples_ms, 95),
            "p99_ms": percentile(samples_ms, 99), "n": len(samples_ms),
            "mean_ms": statistics.fmean(samples_ms) if samples_ms else None}
