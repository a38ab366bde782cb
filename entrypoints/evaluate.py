"""``evaluate``: SageMaker Processing's contract around ``training.evaluate``, the pipeline's evaluation step.

Processing mounts the training job's ``model.tar.gz`` under ``<base>/model`` and the data prefix under
``<base>/data``; the scores go to ``<base>/evaluation/evaluation.json``, which the pipeline's condition reads
(``launcher.pipeline``). ``<base>`` is ``/opt/ml/processing`` unless ``SMTX_PROCESSING_DIR`` moves it (tests).
A failure is one line on stderr and exit status 1: Processing shows the job's log.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping

log = logging.getLogger("entrypoints.evaluate")
EVALUATION_FILE = "evaluation.json"


def base_dir(env: Mapping[str, str]) -> Path:
    """SageMaker Processing's /opt/ml/processing, or where SMTX_PROCESSING_DIR moves it."""
    return Path(env.get("SMTX_PROCESSING_DIR", "/opt/ml/processing"))


def unpack(model_input: Path, into: Path) -> Path:
    """The model folder: ``model.tar.gz`` unpacked into ``into`` by the one vetted extraction (only plain files
    and folders that land inside ``into``), or the input itself when it is already a checkpoint folder."""
    from archive.checks import safe_extract

    archives = sorted(model_input.glob("*.tar.gz"))
    if not archives:
        return model_input
    safe_extract(archives[0], into)
    return into


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Score the mounted model on the mounted test split and write evaluation.json."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    base = base_dir(os.environ if env is None else env)
    from training.evaluate import evaluate

    try:
        with tempfile.TemporaryDirectory(prefix="smtx-evaluate-") as scratch:
            result = evaluate(unpack(base / "model", Path(scratch)), base / "data")
    except Exception as exc:  # noqa: BLE001 -- the edge: any failure is reported in one line, never a traceback
        print(f"evaluation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = base / "evaluation" / EVALUATION_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    log.info("wrote %s (%d test records)", out, result["records"])
    return 0
