"""Served answers score what training-side evaluation scored: archive the checkpoint ``make train`` wrote, serve it
the way SageMaker does (``python -m entrypoints serve``, a real TorchServe), send the test split through
``/invocations`` and score the answers with the same scorer."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from entrypoints.torchserve import free_port
from tasks.fields import Record
from tasks.kinds import task_kind

ROOT = Path(__file__).resolve().parents[1]
#: records per request: one test split in a few jsonlines payloads
CHUNK = 256


def _post(url: str, body: bytes) -> list[dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/jsonlines", "Accept": "application/jsonlines"})
    with urllib.request.urlopen(req, timeout=600) as resp:  # our own server, on loopback
        return [json.loads(line) for line in resp.read().splitlines()]


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        if "model ready" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"serve did not get ready at {url}")


def served_answers(checkpoint: Path, data_dir: Path, records: list[Record]) -> tuple[list[dict[str, Any]], str]:
    """The server's answers to ``records`` (in order) and the runtime that served them."""
    from archive.build import RuntimeOptions, build

    work = Path(tempfile.mkdtemp(prefix="quality-served-"))
    try:
        built = build(checkpoint, work / "store", name="model", runtime=RuntimeOptions(data=data_dir))
        model = work / "ml" / "model"
        model.mkdir(parents=True)
        with tarfile.open(built.tarball) as tf:
            tf.extractall(model, filter="data")
        port, log = free_port(), work / "serve.log"
        env = {**os.environ, "SAGEMAKER_BASE_DIR": str(work / "ml"), "SAGEMAKER_BIND_TO_PORT": str(port),
               "SMTX_MAX_RECORDS": str(CHUNK), "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "entrypoints", "serve"], cwd=ROOT, env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            _wait(url, proc, log)
            answers: list[dict[str, Any]] = []
            for start in range(0, len(records), CHUNK):
                lines = [json.dumps(r.inputs()) for r in records[start:start + CHUNK]]
                answers += _post(url, ("\n".join(lines) + "\n").encode("utf-8"))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        return answers, built.runtime
    finally:
        shutil.rmtree(work, ignore_errors=True)


def served_check(task: str, checkpoint: Path, data_dir: Path, gold: list[Any], labels: list[str],
                 trained: dict[str, Any], records: list[Record]) -> dict[str, Any]:
    """The served answers' scores against the training-side scores of the same checkpoint."""
    answers, runtime = served_answers(checkpoint, data_dir, records)
    errors = [a for a in answers if "error" in a]
    if len(answers) != len(records) or errors:
        return {"runtime": runtime, "equal": False, "detail": f"{len(answers)} answers for {len(records)} "
                                                              f"records, {len(errors)} errors"}
    served = task_kind(task).score(labels, gold, answers)
    scalars = {k: v for k, v in trained.items() if isinstance(v, (int, float))}
    differing = {k: (v, served.get(k)) for k, v in scalars.items()
                 if not isinstance(served.get(k), (int, float)) or not math.isclose(v, served[k], abs_tol=1e-9)}
    return {"runtime": runtime, "equal": not differing, "differing": differing,
            "served": {k: served[k] for k in scalars if k in served}}
