"""The tuner reads what training really writes: one trial of a tuning job, run as SageMaker runs it.

The tuning request is ``launcher.tuning``'s own; the trial's hyperparameters are its static ones, one value of each
range and the ``_tuning_objective_metric`` SageMaker adds, written to ``/opt/ml/input/config/hyperparameters.json``
of a fake ``/opt/ml`` tree; the image's ``train`` entrypoint runs in a real process on a tiny random BERT, and its
stdout (what SageMaker ships to CloudWatch, where the tuner applies the regexes line by line) is read back.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from launcher.jobs.hyperparameters import Hyperparameters
from launcher.jobs.training import TrainingConfig
from launcher.jobs.tuning import TuningConfig, tuning_job_request
from launcher.jobs.tuning_ranges import objectives, parse_range
from tests.helpers.opt_ml import make_opt_ml, run_train

pytestmark = pytest.mark.slow
TASK = "classif"


def _request(model: Path) -> dict:
    static = {"model_name": str(model), "max_steps": 4, "per_device_train_batch_size": 8, "max_seq_length": 32,
              "eval_steps": 2, "logging_steps": 1}
    training = TrainingConfig(image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:cpu",
                              role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
                              data_uri="s3://smtx-log/data/", output_uri="s3://smtx-log/output",
                              hyperparameters=Hyperparameters(TASK, **static), instance_type="ml.m5.xlarge")
    ranges = (parse_range("learning_rate=1e-5:1e-3:log", TASK, static),)
    config = TuningConfig(training=training, objective="dev_f1_macro", direction="Maximize", ranges=ranges,
                          max_jobs=2, max_parallel=1)
    return tuning_job_request("smtx-hp-log", config)


def test_every_metric_definition_finds_a_float_in_a_real_trials_log_and_the_objective_is_the_kept_models(
        tmp_path: Path, tiny_model_dir, small_data) -> None:
    request = _request(tiny_model_dir("bert"))
    definition = request["TrainingJobDefinition"]
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
    hyperparameters = {**definition["StaticHyperParameters"], "learning_rate": "0.0001",
                       "_tuning_objective_metric": objective}
    base = make_opt_ml(tmp_path / "ml", small_data(TASK), hyperparameters)
    proc = run_train(base)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    lines = out.splitlines()
    definitions = {d["Name"]: d["Regex"] for d in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert set(objectives(TASK)) <= set(definitions) and objective in definitions
    found: dict[str, list[float]] = {}
    for name, regex in definitions.items():
        found[name] = [float(m.group(1)) for line in lines for m in [re.search(regex, line)] if m]
        assert found[name], f"{name}: {regex!r} matches no line of the trial's log"
    # the tuner takes the last value a trial reports: the final dev report of the model training kept (the best
    # evaluation), not whatever the last evaluation scored
    kept = json.loads((base / "model" / "metrics.json").read_text())["dev"]["f1_macro"]
    assert found[objective][-1] == pytest.approx(kept, abs=1e-6)
    # one line per evaluation (max_steps 4, eval_steps 2) and the final report: hyperband's --max-resource unit
    assert len(found[objective]) == 4 // 2 + 1, found[objective]
