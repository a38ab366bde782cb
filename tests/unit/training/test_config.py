"""training.config: SageMaker hyperparameters (plain or JSON-encoded strings) -> one validated TrainConfig."""
from __future__ import annotations

import dataclasses

import pytest

from tasks.kinds import TASK_NAMES
from tests.helpers import ROOT
from training.config import EMBEDDED_MODEL, ConfigError, TrainConfig, hyperparameters, markdown_table

VALID_NAMES = sorted(f.name for f in dataclasses.fields(TrainConfig))


def _raised(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_hyperparameters(raw)
    return info.value


def _error(raw: dict) -> str:
    return str(_raised(raw))


def test_defaults():
    cfg = TrainConfig.from_hyperparameters({"task_name": "ner"})
    assert cfg == TrainConfig(task_name="ner")
    assert (cfg.model_name, cfg.max_steps, cfg.num_train_epochs, cfg.use_bbox, cfg.max_seq_length, cfg.stride) == (
        EMBEDDED_MODEL, -1, 3.0, False, 128, 32)
    assert EMBEDDED_MODEL == "embedded:all-MiniLM-L6-v2"


def test_plain_string_values():
    cfg = TrainConfig.from_hyperparameters({
        "task_name": "classif", "max_steps": "30", "learning_rate": "1e-4", "num_train_epochs": "2.5",
        "use_bbox": "false", "model_name": "/opt/ml/input/data/model", "warmup_ratio": "0.1",
    })
    assert (cfg.task_name, cfg.max_steps, cfg.learning_rate, cfg.num_train_epochs) == ("classif", 30, 1e-4, 2.5)
    assert (cfg.use_bbox, cfg.model_name, cfg.warmup_ratio) == (False, "/opt/ml/input/data/model", 0.1)
    assert type(cfg.max_steps) is int and type(cfg.num_train_epochs) is float


def test_json_encoded_values_as_the_sdk_sends_them():
    cfg = TrainConfig.from_hyperparameters({
        "task_name": '"ner"', "max_steps": "3", "model_name": '"bert-base-cased"', "use_bbox": "true",
        "learning_rate": '"0.001"', "seed": '"7"',
    })
    assert (cfg.task_name, cfg.max_steps, cfg.model_name, cfg.use_bbox) == ("ner", 3, "bert-base-cased", True)
    assert (cfg.learning_rate, cfg.seed) == (0.001, 7)


def test_python_values_from_a_launcher_dict():
    cfg = TrainConfig.from_hyperparameters({"task_name": "regression", "max_steps": 12, "use_bbox": False,
                                            "learning_rate": 0.5})
    assert (cfg.max_steps, cfg.use_bbox, cfg.learning_rate) == (12, False, 0.5)


def test_whole_float_is_accepted_for_an_integer():
    assert TrainConfig.from_hyperparameters({"task_name": "ner", "max_steps": "3.0"}).max_steps == 3


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("True", True), ("1", True), ("yes", True), (" YES ", True), ('"true"', True),
    ("false", False), ("False", False), ("0", False), ("no", False),
])
def test_bools(raw, expected):
    assert TrainConfig.from_hyperparameters({"task_name": "ner", "use_bbox": raw}).use_bbox is expected


def test_sagemaker_names_are_ignored():
    cfg = TrainConfig.from_hyperparameters({
        "task_name": "classif", "sagemaker_program": "train.py", "sagemaker_submit_directory": "s3://b/k",
        "sagemaker_container_log_level": "20", "_tuning_objective_metric": "dev_f1",
    })
    assert cfg == TrainConfig(task_name="classif")


def test_round_trip_through_the_string_form():
    cfg = TrainConfig(task_name="multilabel-classif", max_steps=40, use_bbox=True, learning_rate=2e-5,
                      warmup_ratio=0.25, model_name="some/model")
    raw = cfg.to_hyperparameters()
    assert raw["use_bbox"] == "true" and raw["learning_rate"] == "2e-05" and raw["max_steps"] == "40"
    assert all(isinstance(v, str) for v in raw.values()) and sorted(raw) == VALID_NAMES
    assert TrainConfig.from_hyperparameters(raw) == cfg


# ---- errors: each names the field, the value and what was expected ----------------------------------------------

def test_unknown_name_lists_the_valid_ones():
    message = _error({"task_name": "ner", "epochs": "3"})
    assert message == f"unknown hyperparameter 'epochs'; valid names are {VALID_NAMES}"
    assert "'num_train_epochs'" in message and "'task_name'" in message


def test_task_name_is_required():
    assert _error({"max_steps": "3"}) == (
        "hyperparameter task_name is required; expected one of ['ner', 'classif', 'multilabel-classif', 'regression', "
        "'pair-classif']")


@pytest.mark.parametrize("raw, message", [
    ({"task_name": "tagging"},
     "task_name='tagging' is not valid; expected one of ['ner', 'classif', 'multilabel-classif', 'regression', "
     "'pair-classif']"),
    ({"task_name": '"tagging"'},
     "task_name='tagging' is not valid; expected one of ['ner', 'classif', 'multilabel-classif', 'regression', "
     "'pair-classif']"),
    ({"task_name": "ner", "max_steps": "three"}, "max_steps='three' is not valid; expected an integer"),
    ({"task_name": "ner", "max_steps": "3.5"}, "max_steps='3.5' is not valid; expected an integer"),
    ({"task_name": "ner", "max_steps": '"x"'}, "max_steps='x' is not valid; expected an integer"),
    ({"task_name": "ner", "learning_rate": "fast"}, "learning_rate='fast' is not valid; expected a number"),
    ({"task_name": "ner", "use_bbox": "maybe"}, "use_bbox='maybe' is not valid; expected true or false"),
    ({"task_name": "ner", "use_bbox": "2"}, "use_bbox='2' is not valid; expected true or false"),
    ({"task_name": "ner", "max_steps": True}, "max_steps=True is not valid; expected an integer"),
    ({"task_name": "ner", "max_steps": "0"},
     "max_steps=0 trains nothing; expected a positive number or -1 (use num_train_epochs)"),
    ({"task_name": "ner", "max_steps": "-2"}, "max_steps=-2 is too small; expected at least -1"),
    ({"task_name": "ner", "num_train_epochs": "0"}, "num_train_epochs=0.0 trains nothing; expected > 0"),
    ({"task_name": "ner", "per_device_train_batch_size": "0"},
     "per_device_train_batch_size=0 is too small; expected at least 1"),
    ({"task_name": "ner", "per_device_eval_batch_size": "0"},
     "per_device_eval_batch_size=0 is too small; expected at least 1"),
    ({"task_name": "ner", "learning_rate": "-0.1"}, "learning_rate=-0.1 is too small; expected at least 0.0"),
    ({"task_name": "ner", "warmup_ratio": "1"}, "warmup_ratio=1.0 is too large; expected at most 0.999"),
    ({"task_name": "ner", "weight_decay": "-1"}, "weight_decay=-1.0 is too small; expected at least 0.0"),
    ({"task_name": "ner", "max_seq_length": "4", "stride": "0"},
     "max_seq_length=4 is too small; expected at least 8"),
    ({"task_name": "ner", "max_seq_length": "64", "stride": "32"},
     "stride=32 is too large for max_seq_length=64; expected at most 31"),
    ({"task_name": "ner", "stride": "-1"}, "stride=-1 is too small; expected at least 0"),
    ({"task_name": "ner", "gradient_accumulation_steps": "0"},
     "gradient_accumulation_steps=0 is too small; expected at least 1"),
    ({"task_name": "ner", "seed": "-1"}, "seed=-1 is too small; expected at least 0"),
    ({"task_name": "ner", "eval_steps": "-5"}, "eval_steps=-5 is too small; expected at least 0"),
    ({"task_name": "ner", "logging_steps": "0"}, "logging_steps=0 is too small; expected at least 1"),
])
def test_errors_name_field_and_value(raw, message):
    error = _raised(raw)
    assert str(error) == message
    assert message.startswith(f"{error.field}=")  # .field is the hyperparameter the message is about


@pytest.mark.parametrize("raw, field", [
    ({"task_name": "ner", "epochs": "3"}, "epochs"),  # unknown: the name as given
    ({"max_steps": "3"}, "task_name"),  # missing
    ({"task_name": "ner", "max_seq_length": "64", "stride": "32"}, "stride"),  # two fields: the one to change
])
def test_errors_whose_message_does_not_start_with_the_field_still_carry_it(raw, field):
    assert _raised(raw).field == field


def test_epochs_do_not_matter_when_steps_are_set():
    assert TrainConfig.from_hyperparameters({"task_name": "ner", "max_steps": "5", "num_train_epochs": "0"}
                                            ).num_train_epochs == 0.0


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("name", ["learning_rate", "warmup_ratio", "num_train_epochs"])
def test_nan_is_refused(name):
    _error({"task_name": "ner", name: "nan"})


def test_default_stride_fits_a_short_max_seq_length():
    cfg = TrainConfig.from_hyperparameters({"task_name": "ner", "max_seq_length": "64"})
    assert cfg.stride == 15
    assert TrainConfig.from_hyperparameters({"task_name": "ner", "max_seq_length": "512"}).stride == 32


# ---- the one declaration: TrainConfig's fields, shown everywhere from their metadata ---------------------------

def test_every_field_is_described_with_its_type_default_and_bounds():
    described = {h.name: h for h in hyperparameters()}
    assert list(described) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(h.doc for h in described.values())
    assert described["task_name"].required and described["task_name"].choices == TASK_NAMES
    assert (described["warmup_ratio"].kind, described["warmup_ratio"].minimum, described["warmup_ratio"].maximum) == (
        float, 0.0, 0.999)
    assert described["use_bbox"].kind is bool and described["use_bbox"].describe().endswith("(default false)")
    assert described["max_steps"].describe().endswith("(at least -1; default -1)")


def test_the_bounds_shown_are_the_bounds_enforced():
    for h in hyperparameters():
        if h.minimum is not None and h.kind is int and h.name != "max_steps":
            _error({"task_name": "ner", h.name: str(int(h.minimum) - 1)})
        if h.maximum is not None:
            _error({"task_name": "ner", h.name: str(h.maximum + 1)})


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- hyperparameters: start -->\n", "\n<!-- hyperparameters: end -->"
    assert start in readme and end in readme
    shown = readme[readme.index(start) + len(start):readme.index(end)]
    assert shown == markdown_table(), "README.md is stale: paste training.config.markdown_table() between the markers"


def test_training_help_lists_every_hyperparameter(capsys):
    from training.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    assert all(f"  {h.name}: {h.describe()}" in text for h in hyperparameters())
