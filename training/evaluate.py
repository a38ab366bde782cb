"""Score a trained model on a data folder's test split, as training scored it: the same load path serving uses
(``runtimes.load``), the same decode (``tasks.predict``) and the same scorer (``training.trainer.score``).

The pipeline's evaluation step runs this (``python -m entrypoints evaluate``) on the training job's archive, so
the condition that decides whether a version is registered reads scores of the model as it will serve.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from runtimes.checkpoint import check_checkpoint
from runtimes.load import load_runner
from tasks.predict import predict
from training.data import load_dataset
from training.metric_lines import metric_lines
from training.trainer import score

log = logging.getLogger(__name__)


def scalar_scores(scores: dict[str, Any]) -> dict[str, float]:
    """The numbers among a split's scores (the tables, such as the confusion matrix, left out)."""
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def evaluate(model_dir: str | Path, data_dir: str | Path, batch_size: int = 32) -> dict[str, Any]:
    """``{"test": scores}`` of the model in ``model_dir`` on ``data_dir``'s test.csv; the scores are logged as
    training logs them (``test_<name>=<value>;``)."""
    spec = check_checkpoint(model_dir)
    tokenizer, runner, _ = load_runner(Path(model_dir), spec)
    data = load_dataset(data_dir, spec.task, spec.use_bbox)
    predictions = predict(spec, tokenizer, runner, data.test, max_batch_size=batch_size)
    scores = score(spec, data.test, predictions)
    for line in metric_lines("test", scores):
        log.info(line)
    return {"test": scores, "records": len(data.test)}
