"""The name=value; metric lines: what training really logs is what SageMaker's MetricDefinitions match.

For every task of the table, the real logging functions -- the Trainer callback (training loss, dev scores at
each evaluation, fed the way the Trainer feeds it, dev scores from the real compute_metrics) and the final
dev/test report of ``training.run`` -- log scores of real decoded predictions on the example data. A seeded
random-logits function stands in for the model (a runtime is any "tensors in, logits out" callable).
"""
from __future__ import annotations

import logging
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from launcher.jobs.metrics import format_metrics, metric_definitions, parse_metrics
from tasks.batching import pad
from tasks.encode import encode
from tasks.kinds import TASKS, task_kind
from tasks.predict import predict
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import inputs_of, tokenizers  # noqa: F401 -- pytest fixtures
from training.callbacks import MetricLines
from training.data import load_dataset
from training.metric_lines import format_metric, metric_lines, parse_metric_lines
from training.run import log_scores
from training.trainer import _metric_fn, score


def _random_runner(spec: TaskSpec, seed: int = 0):
    rng = np.random.default_rng(seed)
    token_head, outputs = task_kind(spec.task).head == "token", task_kind(spec.task).num_outputs(spec.labels)

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        n, width = batch["input_ids"].shape
        return rng.normal(size=(n, width, outputs) if token_head else (n, outputs))

    return run


def _logged_lines(task: str, small_data, tokenizer, caplog) -> list[str]:
    """Every message the real logging functions write for one short run of ``task`` (no model trained)."""
    data = load_dataset(small_data(task), task)
    spec = TaskSpec(task=task, model_type="bert", labels=data.labels, max_seq_length=32, stride=8)
    runner = _random_runner(spec)
    features = encode(spec, tokenizer, data.dev, with_labels=True)
    logits = runner(pad(features, inputs_of("bert"), tokenizer.pad_token_id))
    dev_scores = _metric_fn(spec, data.dev, features)(SimpleNamespace(predictions=logits))
    state = SimpleNamespace(is_world_process_zero=True, global_step=4)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        callback = MetricLines()
        # what the Trainer passes to on_log: a training step, then an evaluation (scores prefixed eval_, timings)
        callback.on_log(None, state, None, logs={"loss": 0.6931, "grad_norm": 1.5, "learning_rate": 5e-5,
                                                 "epoch": 0.5})
        callback.on_log(None, state, None, logs={"eval_loss": 0.7, **{f"eval_{k}": v for k, v in dev_scores.items()},
                                                 "eval_runtime": 0.2, "eval_samples_per_second": 60.0,
                                                 "eval_steps_per_second": 5.0, "epoch": 0.5})
        for split, records in (("dev", data.dev), ("test", data.test)):
            log_scores(split, score(spec, records, predict(spec, tokenizer, runner, records)))
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_definition_matches_a_logged_line_and_every_logged_metric_has_one(task, small_data, tokenizers,
                                                                                caplog):
    lines = _logged_lines(task, small_data, tokenizers["bert"], caplog)
    definitions = {d["Name"]: d["Regex"] for d in metric_definitions(task)}
    unmatched = [name for name, regex in definitions.items() if not any(re.search(regex, line) for line in lines)]
    assert unmatched == [], f"definitions that match nothing training logs: {unmatched}"
    logged = {name for line in lines for name in parse_metric_lines(line)}
    assert logged - set(definitions) == set(), "metrics logged without a definition"
    assert "test_loss" not in definitions


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_tasks_scalar_scores_are_the_metric_names_its_row_declares(task, small_data, tokenizers):
    data = load_dataset(small_data(task), task)
    spec = TaskSpec(task=task, model_type="bert", labels=data.labels, max_seq_length=32, stride=8)
    scores = score(spec, data.test, predict(spec, tokenizers["bert"], _random_runner(spec), data.test))
    scalars = {k for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert scalars == set(task_kind(task).metric_names)


@pytest.mark.parametrize("value", [0.8123, -0.125, 0.0, 3, float("nan"), float("inf"), float("-inf"), 1e-9])
def test_a_formatted_metric_parses_back(value):
    line = format_metric("dev_f1_macro", value)
    assert re.fullmatch(r"dev_f1_macro=-?([0-9]+\.[0-9]{6}|nan|inf);", line)
    parsed = parse_metric_lines(f"2026-01-01 INFO training: {line} step=3;")
    assert parsed == pytest.approx({"dev_f1_macro": round(value, 6)}, nan_ok=True)


def test_metric_lines_skip_tables_none_and_booleans_and_carry_the_step():
    scores = {"f1": 0.5, "per_type": {"PER": {"f1": 1.0}}, "pearson": None, "flag": True, "n": 2}
    assert metric_lines("test", scores, step=7) == ["test_f1=0.500000; step=7;", "test_n=2.000000; step=7;"]


def test_the_launcher_reads_and_shows_lines_with_the_same_functions():
    line = " ".join(metric_lines("dev", {"accuracy": 0.7, "f1_macro": math.nan}))
    assert parse_metrics(line) == pytest.approx({"dev_accuracy": 0.7, "dev_f1_macro": math.nan}, nan_ok=True)
    assert format_metrics({"dev_accuracy": 0.7, "dev_f1_macro": math.nan}).splitlines() == [
        "dev_accuracy=0.700000;", "dev_f1_macro=nan;"]
