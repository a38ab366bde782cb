"""Pure tests of the launcher's configs, names, metric regexes, images and request builders (no AWS, no moto)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.cli import COMMANDS, build_parser
from launcher.endpoints.deploy import ServingConfig
from launcher.errors import SettingError, WaitTimeout
from launcher.images import default_batch_sizes, family_of, tagged_cpu
from launcher.jobs.hyperparameters import FIELDS, Hyperparameters
from launcher.jobs.metrics import metric_definitions, metric_names, parse_metrics
from launcher.jobs.training import DATA_CHANNEL, TrainingConfig, training_job_request
from launcher.jobs.transform import TransformConfig, transform_job_request
from launcher.names import MAX_LENGTH, NAME_PATTERN, unique_name
from launcher.placement import has_local_storage
from launcher.s3 import S3Uri
from launcher.waiting import Poller
from tasks.kinds import TASK_NAMES, TASKS
from tests.helpers import ROOT
from tests.helpers.launcher_account import ROLE
from training.config import ConfigError, TrainConfig, hyperparameters

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:latest"


def _config(**overrides: object) -> TrainingConfig:
    values: dict = dict(image_uri=IMAGE, role_arn=ROLE, data_uri="s3://bucket/data/", output_uri="s3://bucket/out",
                        hyperparameters=Hyperparameters(task_name="ner", model_name="bert-base-cased"))
    return TrainingConfig(**{**values, **overrides})


# --- names -------------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_unique_names_follow_sagemaker_rules_for_any_prefix(prefix: str) -> None:
    name = unique_name(prefix)
    assert len(name) <= MAX_LENGTH
    assert NAME_PATTERN.fullmatch(name), name


def test_unique_names_are_never_reused_within_the_same_second() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    names = [unique_name("smtx-classif", now) for _ in range(2000)]
    assert len(set(names)) == len(names)
    assert names[0].startswith("smtx-classif-20260102-030405-")


# --- metric definitions ------------------------------------------------------------------------------------

LOG_LINES = {
    "dev_f1=0.812300;": ("dev_f1", 0.8123),
    "test_accuracy=0.950000;": ("test_accuracy", 0.95),
    "train_loss=0.431200;": ("train_loss", 0.4312),
    "2026-01-01 12:00:00 INFO training: dev_loss=1.250000;": ("dev_loss", 1.25),
    "test_pearson=-0.125000;": ("test_pearson", -0.125),
    "dev_spearman=nan;": ("dev_spearman", float("nan")),
    "2026-01-01 12:00:00,001 INFO training.callbacks: train_loss=0.693100; step=10;": ("train_loss", 0.6931),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_has_metric_definitions_for_train_dev_and_test(task: str) -> None:
    names = {d["Name"] for d in metric_definitions(task)}
    assert {"train_loss", "dev_loss"} <= names
    assert "test_loss" not in names  # the test split is scored, never run through the loss: nothing logs it
    for metric in TASKS[task].metric_names:
        assert {f"dev_{metric}", f"test_{metric}"} <= names
    assert len(names) <= 40  # SageMaker's limit per job


@pytest.mark.parametrize("line", sorted(LOG_LINES))
def test_metric_regexes_capture_the_logged_value(line: str) -> None:
    name, value = LOG_LINES[line]
    task = next(t for t in TASKS if name in metric_names(t))
    regex = {d["Name"]: d["Regex"] for d in metric_definitions(task)}[name]
    match = re.search(regex, line)
    assert match is not None and len(match.groups()) == 1
    captured = float(match.group(1))
    assert captured == pytest.approx(value, nan_ok=True)
    assert parse_metrics(line) == pytest.approx({name: value}, nan_ok=True)


def test_metric_regexes_do_not_confuse_names_that_share_a_prefix() -> None:
    by_name = {d["Name"]: d["Regex"] for t in TASKS for d in metric_definitions(t)}
    assert re.search(by_name["dev_f1"], "dev_f1_macro=0.500000;") is None
    assert re.search(by_name["dev_f1_macro"], "dev_f1=0.500000;") is None
    assert re.search(by_name["train_loss"], "pretrain_loss=0.500000;") is None
    assert re.search(by_name["dev_f1"], "dev_f1=0.5") is None  # no terminating ';': not our contract


# --- hyperparameters and configs ---------------------------------------------------------------------------

def test_hyperparameters_are_sent_as_strings_the_way_sagemaker_passes_them() -> None:
    hp = Hyperparameters(task_name="ner", model_name="bert-base-cased", max_steps=10, num_train_epochs=3,
                         use_bbox=False, learning_rate=5e-5, warmup_ratio=0.1, weight_decay=0.0,
                         head_learning_rate_ratio=4.0, per_device_train_batch_size=16, per_device_eval_batch_size=32,
                         max_seq_length=128,
                         stride=16, gradient_accumulation_steps=2, seed=42, eval_steps=50, logging_steps=5,
                         mixed_precision="fp16", gradient_checkpointing=True)
    sent = hp.as_sagemaker()
    assert list(sent) == list(FIELDS)
    assert all(isinstance(v, str) for v in sent.values())
    assert sent == {"task_name": "ner", "model_name": "bert-base-cased", "max_steps": "10", "num_train_epochs": "3",
                    "use_bbox": "false", "learning_rate": "5e-05", "warmup_ratio": "0.1", "weight_decay": "0.0",
                    "head_learning_rate_ratio": "4.0", "per_device_train_batch_size": "16",
                    "per_device_eval_batch_size": "32",
                    "max_seq_length": "128", "stride": "16", "gradient_accumulation_steps": "2", "seed": "42",
                    "eval_steps": "50", "logging_steps": "5", "mixed_precision": "fp16",
                    "gradient_checkpointing": "true"}
    assert Hyperparameters(task_name="classif").as_sagemaker() == {"task_name": "classif"}


def test_the_strings_sent_parse_back_with_the_training_config() -> None:
    hp = Hyperparameters(task_name="ner", max_steps=-1, num_train_epochs=2.5, use_bbox=True, learning_rate=3e-5)
    parsed = TrainConfig.from_hyperparameters(hp.as_sagemaker())
    assert (parsed.max_steps, parsed.num_train_epochs, parsed.use_bbox, parsed.learning_rate) == (-1, 2.5, True, 3e-5)


@pytest.mark.parametrize("field, value", [
    ("task_name", "sentiment"), ("max_steps", 0), ("max_steps", True), ("learning_rate", -1.0),
    ("warmup_ratio", 1.0), ("use_bbox", "yes"), ("seed", 1.5), ("stride", 200),
])
def test_bad_hyperparameters_are_named_with_their_value(field: str, value: object) -> None:
    base: dict = {"task_name": "ner", "max_seq_length": 128}
    with pytest.raises(SettingError) as err:
        Hyperparameters(**{**base, field: value})
    assert err.value.field == field and repr(value) in str(err.value)


@pytest.mark.parametrize("values", [
    {"num_train_epochs": 0.0}, {"max_seq_length": 64, "stride": 32}, {"head_learning_rate_ratio": 0.0},
    {"max_steps": -2},
])
def test_a_refused_hyperparameter_is_the_field_the_training_config_names(values: dict) -> None:
    """The launcher takes the field from ConfigError.field, not from the message's words."""
    with pytest.raises(ConfigError) as job:
        TrainConfig.from_hyperparameters({"task_name": "ner", **{k: str(v) for k, v in values.items()}})
    with pytest.raises(SettingError) as err:
        Hyperparameters(task_name="ner", **values)
    assert err.value.field == job.value.field and err.value.value == values[job.value.field]
    assert str(err.value) == str(job.value)


@pytest.mark.parametrize("overrides, field", [
    ({"role_arn": "SageMakerRole"}, "role_arn"), ({"data_uri": "/tmp/data"}, "data_uri"),  # noqa: S108 -- refused, never used
    ({"instance_type": "g4dn.xlarge"}, "instance_type"), ({"instance_count": 0}, "instance_count"),
    ({"spot": True}, "checkpoint_uri"),
    ({"spot": True, "checkpoint_uri": "s3://bucket/ckpt", "max_wait_s": 10}, "max_wait_s"),
])
def test_training_config_errors_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(SettingError) as err:
        _config(**overrides)
    assert err.value.field == field


def test_training_request_carries_resources_spot_checkpoints_and_metric_definitions() -> None:
    config = _config(instance_type="ml.p3.2xlarge", instance_count=2, volume_gb=50, max_runtime_s=3600,
                     spot=True, checkpoint_uri="s3://bucket/ckpt")
    request = training_job_request("job-1", config)
    assert request["ResourceConfig"] == {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {"S3Uri": "s3://bucket/ckpt/job-1/", "LocalPath": "/opt/ml/checkpoints"}
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions("ner")
    assert request["InputDataConfig"][0]["ChannelName"] == DATA_CHANNEL
    assert request["HyperParameters"] == {"task_name": "ner", "model_name": "bert-base-cased"}
    plain = training_job_request("job-2", _config())
    assert "CheckpointConfig" not in plain and plain["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in plain["StoppingCondition"]


def test_serving_environment_carries_only_the_knobs_that_are_set() -> None:
    config = ServingConfig(IMAGE, ROLE, workers=2, batch_size=8, max_batch_delay_ms=1, response_timeout_s=120,
                           model_server_timeout_s=90, extra_environment={"LOG_LEVEL": "info"})
    assert config.environment() == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_TS_BATCH_SIZE": "8", "SAGEMAKER_TS_MAX_BATCH_DELAY": "1",
        "SAGEMAKER_TS_RESPONSE_TIMEOUT": "120", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "90", "LOG_LEVEL": "info"}
    assert ServingConfig(IMAGE, ROLE).environment() == {}
    with pytest.raises(SettingError, match="batch_size=0"):
        ServingConfig(IMAGE, ROLE, batch_size=0)
    with pytest.raises(SettingError, match="max_batch_delay_ms=0"):  # TorchServe's 100 ms default, not "no wait"
        ServingConfig(IMAGE, ROLE, max_batch_delay_ms=0)


def test_transform_request_uses_the_recommended_settings() -> None:
    request = transform_job_request("t-1", TransformConfig("model-1", max_payload_mb=4), "s3://b/in/x.jsonl",
                                    "s3://b/out/")
    assert request["BatchStrategy"] == "MultiRecord" and request["MaxPayloadInMB"] == 4
    assert request["TransformInput"]["ContentType"] == "application/jsonlines"
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformOutput"] == {"S3OutputPath": "s3://b/out/", "Accept": "application/jsonlines",
                                          "AssembleWith": "Line"}
    # SAGEMAKER_BATCH and friends are SageMaker's to set; how it assembles our answers it does not pass on
    assert request["Environment"] == {"SMTX_ASSEMBLE_WITH": "Line"}
    with pytest.raises(SettingError, match="max_payload_mb"):
        TransformConfig("m", max_payload_mb=0)


def test_s3_uris_parse_join_and_refuse_non_s3() -> None:
    uri = S3Uri.parse("s3://bucket/a/b/")
    assert str(uri.join("c", "d.csv")) == "s3://bucket/a/b/c/d.csv"
    assert str(S3Uri.parse("s3://bucket").join("x").as_prefix()) == "s3://bucket/x/"
    with pytest.raises(SettingError, match="s3_prefix='/local'"):
        S3Uri.parse("/local", "s3_prefix")


def test_poller_is_bounded_by_its_deadline() -> None:
    ticks = iter(range(1000))
    poller = Poller(interval_s=0, timeout_s=5, sleep=lambda _: None, clock=lambda: float(next(ticks)))
    calls = []
    with pytest.raises(WaitTimeout):
        poller.until(lambda: calls.append(1), "nothing")
    assert len(calls) == 5
    assert Poller(interval_s=0, timeout_s=1).until(lambda: "done", "something") == "done"


# --- one declaration each: commands, hyperparameter flags, image and role checks -----------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_parser_and_the_dispatch_come_from_one_command_table() -> None:
    parsers = _subparsers(build_parser({}))
    assert list(parsers) == list(COMMANDS)
    assert all(parsers[name].description == command.help for name, command in COMMANDS.items())


def test_train_has_one_flag_per_training_config_field_with_its_doc_and_bounds() -> None:
    train = _subparsers(build_parser({}))["train"]
    by_dest = {a.dest: a for a in train._actions}
    shown = " ".join(train.format_help().split())  # argparse fills help with %: a doc's "%" must survive it
    for h in hyperparameters():
        assert by_dest[h.name].help.replace("%%", "%") == h.describe()
        assert f"--{h.name.replace('_', '-')}" in by_dest[h.name].option_strings
    # an unescaped "%" in a doc ("~20% slower") made argparse print its own action dict into --help
    assert "option_strings" not in shown and "~20% slower" in shown, shown
    assert by_dest["task_name"].required and list(by_dest["task_name"].choices) == list(TASK_NAMES)
    args = build_parser({}).parse_args(["train", "--data", "s3://b/d/", "--task", "ner", "--warmup-ratio", "0.1",
                                        "--no-use-bbox"])
    assert Hyperparameters(**{n: getattr(args, n) for n in FIELDS}).as_sagemaker() == {
        "task_name": "ner", "use_bbox": "false", "warmup_ratio": "0.1"}


def test_a_bad_role_or_image_is_refused_with_the_same_words_everywhere() -> None:
    messages = set()
    for make in (lambda **kw: _config(**kw),
                 lambda **kw: ServingConfig(**{"image_uri": IMAGE, "role_arn": ROLE, **kw})):
        for field, bad in (("role_arn", "SageMakerRole"), ("image_uri", "my image")):
            with pytest.raises(SettingError) as err:
                make(**{field: bad})
            messages.add(str(err.value))
    assert len(messages) == 2


def test_the_launcher_imports_neither_torch_nor_transformers() -> None:
    code = ("import sys, launcher.cli, launcher.jobs.data; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=ROOT)
    assert run.stdout.strip() == "[]"


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def test_the_image_follows_the_instance_type_and_the_tag_convention() -> None:
    assert tagged_cpu("acct.dkr.ecr.eu-west-1.amazonaws.com/smtx:cpu") and tagged_cpu("r/smtx:1.4-cpu-py311")
    assert not tagged_cpu("r/smtx-cpu-builds:1.4") and not tagged_cpu("r/smtx:gpu") and not tagged_cpu("r/smtx")
    assert (family_of("allenai/longformer-base-4096"), family_of("distilbert-base-uncased"),
            family_of("microsoft/layoutlm-base-uncased"), family_of("embedded:all-MiniLM-L6-v2"),
            family_of("roberta-base"), family_of("gpt2")) == (
        "longformer", "distilbert", "layoutlm", "bert", "roberta", None)
    assert default_batch_sizes("allenai/longformer-base-4096", "ml.g4dn.2xlarge") == {
        "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1}
    assert default_batch_sizes("bert-base-cased", "ml.m5.xlarge") == {}
    assert [has_local_storage(t) for t in ("ml.g4dn.xlarge", "ml.m5d.large", "ml.g5.xlarge", "ml.m5.xlarge",
                                           "ml.p3.2xlarge")] == [True, True, True, False, False]
