"""The soak's verdict and its table: what passed, from the samples and what the clients saw."""
from __future__ import annotations

from typing import Any

from bench.soak_traffic import Tally

#: worker RSS may grow by less than this between the first sample and the last
RSS_GROWTH_LIMIT = 0.10


def verdict(first: dict[str, Any], last: dict[str, Any], tally: Tally) -> dict[str, Any]:
    """Whether the run passed each check, from the first and last samples and what the clients saw."""
    common = [pid for pid in first["worker_rss_mb"] if pid in last["worker_rss_mb"]]
    growth = [(last["worker_rss_mb"][p] - first["worker_rss_mb"][p]) / first["worker_rss_mb"][p] for p in common]
    fd_growth = {"java": (last["java_fds"] or 0) - (first["java_fds"] or 0),
                 "workers": sum(last["worker_fds"].get(p, 0) - first["worker_fds"].get(p, 0) for p in common)}
    return {
        "zero_failed_valid": tally.failed_valid == 0,
        "worker_rss_growth": max(growth) if growth else None,
        "rss_ok": bool(growth) and max(growth) < RSS_GROWTH_LIMIT,
        "fd_growth": fd_growth,
        # java holds one descriptor per client connection: a reconnect between the samples may move it by a few
        "fds_ok": fd_growth["workers"] <= 0 and fd_growth["java"] <= 4,
        "workers_restarted": sorted(set(first["worker_rss_mb"]) ^ set(last["worker_rss_mb"])),
    }


def table(result: dict[str, Any]) -> str:
    """The run as a two-column markdown table."""
    first, last, checks = result["samples"][0], result["samples"][-1], result["verdict"]
    lat = result["latency_ms"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    rss = checks["worker_rss_growth"]
    rows = [
        ("duration / clients", f"{result['seconds']} s / {result['clients']}"),
        ("requests (valid / invalid)", f"{result['requests']} ({result['valid']} / {result['invalid']}), "
                                       f"{result['requests_per_s']} req/s"),
        ("failed valid requests", str(result["failed_valid"])),
        ("invalid requests answered wrongly", str(result["unexpected_invalid"])),
        ("latency p50 / p90 / p99 / max", " / ".join(ms(lat[k]) for k in ("p50", "p90", "p99", "max"))),
        (f"worker RSS at {first['t_s']} s -> end", f"{first['worker_rss_mb']} -> {last['worker_rss_mb']} MB "
                                                   f"({'-' if rss is None else f'{rss:+.1%}'})"),
        ("java fds", f"{first['java_fds']} -> {last['java_fds']}"),
        ("worker fds", f"{first['worker_fds']} -> {last['worker_fds']}"),
        ("workers restarted", str(checks["workers_restarted"] or "none")),
        ("request text in the log", str(result["request_text_in_log"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def passed(result: dict[str, Any]) -> bool:
    """No valid request failed, RSS grew less than the limit, no descriptor leaked and no request text was logged."""
    v = result["verdict"]
    return v["zero_failed_valid"] and v["rss_ok"] and v["fds_ok"] and not result["request_text_in_log"]
