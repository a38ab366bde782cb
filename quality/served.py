"""Served answers score what evaluation scored: archive the checkpoint ``make train`` wrote, serve it the way
SageMaker does (``python -m entrypoints serve``, a real TorchServe, on the path ``auto`` picks for this CPU), send
the test split through ``/invocations`` and score the answers with the same scorer. The served score must equal
the model card's test score for the path that served (``archive.precisions``; within the gate's tolerance for int8
and bf16, whose answers depend on how records are batched), and the card's fp32 score must equal training's own
evaluation: a reduced precision differs from fp32 only by what its gate allowed."""
from __future__ import annotations

import json
import os
import re
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
from tasks.serving_manifest import ServingManifest, ServingPath

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


#: the worker's one load line names the path it serves (runtimes.device.ServePlan.describe)
SERVED_PATH = re.compile(r"serving on the CPU[^\n]* with (\w+) (\w+): ")


def served_answers(checkpoint: Path, data_dir: Path, records: list[Record]
                   ) -> tuple[list[dict[str, Any]], ServingManifest, str]:
    """The server's answers to ``records`` (in order), the archive's serving.json and the path that served, as
    "<runtime>-<precision>" from the worker's log line ("" where it said none)."""
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
        env.pop("SMTX_PRECISION", None)  # the default: what an endpoint serves
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
        said = SERVED_PATH.search(log.read_text(errors="replace"))
        return answers, built.serving, "-".join(said.groups()) if said else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def served_check(task: str, checkpoint: Path, data_dir: Path, gold: list[Any], labels: list[str],
                 trained: dict[str, Any], records: list[Record]) -> dict[str, Any]:
    """The served answers' primary score against the model card's test score for the path that served, and the
    card's fp32 score against training's own evaluation of the same checkpoint."""
    answers, serving, served_path = served_answers(checkpoint, data_dir, records)
    runtime = served_path or serving.runtime
    errors = [a for a in answers if "error" in a]
    if len(answers) != len(records) or errors:
        return {"runtime": runtime, "equal": False, "detail": f"{len(answers)} answers for {len(records)} "
                                                              f"records, {len(errors)} errors"}
    kind = task_kind(task)
    metric = kind.primary_metric
    served = kind.score(labels, gold, answers)
    by_name: dict[str, ServingPath] = {p.name: p for p in serving.paths}
    # the card's score for the path that served, and for fp32; an archive torch serves has no paths: training's
    path = by_name.get(served_path)
    card = (path.scores or {}).get("test") if path else trained.get(metric)
    fp32 = (by_name["onnx-fp32"].scores or {}).get("test") if "onnx-fp32" in by_name else trained.get(metric)
    # fp32 answers do not depend on how records are batched; int8's do (dynamic quantization scales each batch's
    # activations by that batch's range) and bf16's may flip a record at a decision boundary: a reduced path's
    # served score is held to its gate's tolerance of the card's, measured on the archive's own batches
    reduced = path is not None and path.precision != "fp32"
    tolerance = float((path.figures or {}).get("tolerance", 0.005)) if reduced and path else 1e-9
    checks = {"served = the card's score for its path": (served.get(metric), card, tolerance),
              "the card's fp32 score = training's evaluation": (fp32, trained.get(metric), 1e-9)}
    differing = {what: (a, b) for what, (a, b, tol) in checks.items()
                 if not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol)}
    return {"runtime": runtime, "equal": not differing, "differing": differing, "metric": metric,
            "served": {k: served[k] for k in trained if k in served and isinstance(trained[k], (int, float))},
            "card": card, "tolerance": tolerance}
