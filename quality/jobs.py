"""Every run of a measurement as one job, and the jobs run side by side.

On 2 cores, torch with 2 threads on one small batch uses them poorly; two runs with one thread each finish the
whole measurement in about 60 % of the time. Jobs are ordered seed by seed with the variants of one seed next to
each other, so the runs being compared share the machine under the same load; each job's wall time is measured
under that load, which the report states (``jobs`` and ``threads`` in its setting).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable

from quality.settings import Setting
from training.config import EMBEDDED_MODEL

log = logging.getLogger("quality")
#: the log lines of the measurement and of its worker processes
LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


@dataclass(frozen=True)
class Job:
    """One training run: a variant of one corpus at one seed."""

    corpus: str
    task: str
    variant: str
    setting: Setting
    folder: Path
    #: ours only: also archive, serve and score the served answers (once per corpus)
    check_served: bool = False
    #: the base model every variant fine-tunes, as training's ``model_name`` takes it (a hub id is never fetched)
    model: str = EMBEDDED_MODEL


def plan(corpus: str, task: str, folder: Path, settings: Iterable[Setting], variants: Iterable[str],
         model: str = EMBEDDED_MODEL) -> list[Job]:
    """The jobs of one corpus, seed by seed; the first seed of ours checks the served archive."""
    variants = tuple(variants)
    jobs = []
    for i, setting in enumerate(settings):
        jobs += [Job(corpus, task, v, setting, folder, check_served=(i == 0 and v == "ours"), model=model)
                 for v in variants]
    return jobs


def threads_per_job(jobs: int) -> int:
    """The cores each job gets: all of them shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _limit_threads(threads: int) -> None:
    """Before torch is imported in this process: its thread pools size themselves from these at start."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def _start_worker(threads: int) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    _limit_threads(threads)


def run_job(job: Job) -> dict[str, Any]:
    """Train and score one job (in a worker process or this one); the run's row of the results."""
    from quality import ours, recipe
    from training.data import load_dataset
    from training.run import resolve_model

    log.info("%s: %s, seed %d, %d steps, sequence %d", job.corpus, job.variant, job.setting.seed, job.setting.steps,
             job.setting.max_seq_length)
    data = load_dataset(job.folder, job.task)
    if job.variant in ours.VARIANTS:
        outcome = ours.run(job.task, job.folder, data, job.setting, check_served=job.check_served, model=job.model,
                           variant=job.variant)
    else:
        outcome = recipe.run(job.task, data, job.setting, job.variant, resolve_model(job.model))
    scores = ", ".join(f"{k} {100 * v:.2f}" for k, v in outcome.metrics.items() if isinstance(v, float))
    log.info("%s: %s, seed %d: %s (%.0f s)", job.corpus, job.variant, job.setting.seed, scores, outcome.wall_seconds)
    return {"corpus": job.corpus, "task": job.task, "variant": job.variant, "seed": job.setting.seed,
            "steps": job.setting.steps, "max_seq_length": job.setting.max_seq_length, **asdict(outcome)}


def run_all(jobs: list[Job], n_jobs: int) -> list[dict[str, Any]]:
    """Every job's row, in the order given; ``n_jobs`` at a time, each with its share of the cores. The first
    failure stops the measurement (the jobs not yet started are cancelled) and is raised here."""
    threads = threads_per_job(n_jobs)
    if n_jobs == 1:
        _limit_threads(threads)
        return [run_job(job) for job in jobs]
    # spawn: a fresh interpreter per worker, so the thread limits are in place before torch is imported
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
