"""TorchServe's processes under a server we started, and what they hold: RSS and open file descriptors.

The soak samples them to catch leaks; the benchmark samples the workers' peak RSS while it loads them.
"""
from __future__ import annotations

from typing import Any

import psutil


def processes(root_pid: int) -> dict[str, list[psutil.Process]]:
    """TorchServe's java frontend and its Python model workers, under ``root_pid``."""
    found: dict[str, list[psutil.Process]] = {"java": [], "workers": []}
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "model_service_worker" in cmd:
            found["workers"].append(proc)
        elif proc.name() == "java" or "org.pytorch.serve.ModelServer" in cmd:
            found["java"].append(proc)
    return found


def sample(root_pid: int, elapsed_s: float) -> dict[str, Any]:
    """RSS and open descriptors of each process right now."""
    out: dict[str, Any] = {"t_s": round(elapsed_s, 1), "worker_rss_mb": {}, "worker_fds": {}, "java_fds": None,
                 "java_rss_mb": None}
    found = processes(root_pid)
    for proc in found["workers"]:
        try:
            out["worker_rss_mb"][str(proc.pid)] = round(proc.memory_info().rss / 2**20, 1)
            out["worker_fds"][str(proc.pid)] = proc.num_fds()
        except psutil.Error:
            pass
    if found["java"]:
        java = found["java"][0]
        try:
            out["java_fds"], out["java_rss_mb"] = java.num_fds(), round(java.memory_info().rss / 2**20, 1)
        except psutil.Error:
            pass
    return out
