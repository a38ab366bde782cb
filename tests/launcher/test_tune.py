"""tune, follow-tuning, stop-tuning and deploy --tuning-job, through the command line against moto in-process.

moto 5.2.5 stores a tuning job as sent but runs no trial; ``tests/helpers/moto_tuning.py`` plays the tuner (see its
docstring for the gaps). Every refusal: exit 2, one line naming the flag, no tuning job and no S3 object.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from launcher.aws import AwsSettings, Clients
from launcher.jobs.metrics import metric_definitions
from launcher.jobs.tuning import TuningFollower, outcome
from launcher.waiting import Poller
from tests.helpers import EXAMPLES
from tests.helpers.moto_sagemaker import in_process_moto_server, offline_account, run_cli, write_model_artifacts
from tests.helpers.moto_tuning import Trial, TuningDriver, accept_tuning_calls

REGION = "eu-west-1"
BUCKET = "smtx-tune"
ENV = {
    "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:cpu",
    "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:cpu",
    "SMTX_GPU_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:gpu",
    "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx",
}
TUNE = ["tune", "--data", str(EXAMPLES / "classif"), "--task", "classif", "--instance-type", "ml.m5.xlarge",
        "--max-jobs", "4", "--max-parallel", "2", "--no-wait", "--create-bucket"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        accept_tuning_calls()
        write_model_artifacts(REGION)
        yield clients


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, ENV, *argv, timeout_s=10)


def _tune(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    status, out, err = _run(capsys, *TUNE, *extra)
    assert status == 0, err
    return out.split("tuning job ", 1)[1].split(":", 1)[0]


def _nothing_created(clients: Clients) -> bool:
    buckets = clients.s3.list_buckets()["Buckets"]
    keys = sum(clients.s3.list_objects_v2(Bucket=b["Name"]).get("KeyCount", 0) for b in buckets)
    jobs = clients.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    return keys == 0 and not jobs and not clients.sagemaker.list_models()["Models"]


def test_tune_sends_trains_job_definition_the_ranges_the_objective_and_the_tags(aws: Clients, capsys) -> None:
    name = _tune(capsys, "--range", "learning_rate=1e-5:1e-3:log", "--range", "max_steps=10:50",
                 "--range", "mixed_precision=no,bf16", "--max-seq-length", "64", "--tag", "team=nlp",
                 "--early-stopping", "auto", "--strategy", "random")
    assert len(name) <= 32 and name.startswith("smtx-hp-")
    status, out, err = _run(capsys, "list")
    assert status == 0 and "tuning-jobs: 1\n" in out and name in out, out
    job = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    config = job["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random" and config["TrainingJobEarlyStoppingType"] == "Auto"
    # the task's primary metric, in its known direction
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "dev_f1_macro"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "1e-05", "MaxValue": "0.001",
                                       "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "max_steps", "MinValue": "10", "MaxValue": "50", "ScalingType": "Auto"}],
        "CategoricalParameterRanges": [{"Name": "mixed_precision", "Values": ["no", "bf16"]}]}
    definition = job["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {"task_name": "classif", "max_seq_length": "64"}
    assert definition["AlgorithmSpecification"] == {
        "TrainingImage": ENV["SMTX_TRAINING_IMAGE"], "TrainingInputMode": "File",
        "MetricDefinitions": metric_definitions("classif")}
    data = definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert data.startswith(f"s3://{BUCKET}/smtx/data/classif-classif-")
    assert definition["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/smtx/output"}
    assert definition["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=job["HyperParameterTuningJobArn"])
            ["Tags"]}
    assert tags == {"team": "nlp", "smtx:created-by": "smtx-launcher", "smtx:command": "tune", "smtx:task": "classif"}
    bucket, prefix = data[len("s3://"):].split("/", 1)
    for key in ("train.csv", "dev.csv", "test.csv"):
        tagging = aws.s3.get_object_tagging(Bucket=bucket, Key=prefix + key)["TagSet"]
        assert {"Key": "smtx:command", "Value": "tune"} in tagging and {"Key": "team", "Value": "nlp"} in tagging


def test_hyperband_gets_its_resource_and_no_early_stopping(aws: Clients, capsys) -> None:
    name = _tune(capsys, "--range", "seed=1:9", "--strategy", "hyperband", "--max-resource", "5")
    config = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband" and config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 5}}


def test_a_batch_size_defaulted_for_a_gpu_gives_way_to_its_range_and_a_regression_objective_minimises(
        aws: Clients, capsys) -> None:
    status, out, err = _run(capsys, "tune", "--data", str(EXAMPLES / "regression"), "--task", "regression",
                            "--instance-type", "ml.g4dn.xlarge", "--max-jobs", "2", "--no-wait", "--create-bucket",
                            "--range", "per_device_train_batch_size=4,8")
    assert status == 0, err
    job = aws.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"][0]
    described = aws.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=job["HyperParameterTuningJobName"])
    static = described["TrainingJobDefinition"]["StaticHyperParameters"]
    assert "per_device_train_batch_size" not in static and static["per_device_eval_batch_size"] == "10"
    assert described["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] == ENV["SMTX_GPU_IMAGE"]
    assert described["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize", "MetricName": "dev_mse"}


REFUSED = [
    (["--range", "warmup_ratio=0:2"], "--range warmup_ratio=0:2: 2.0 is refused", "at most 0.999"),
    (["--range", "epochs=1:3"], "--range epochs=1:3: no hyperparameter 'epochs'; tunable: model_name,", None),
    (["--range", "learning_rate"], "--range learning_rate: expected name=lo:hi", None),
    (["--range", "learning_rate=1e-5:1e-3:cubic"], "--range learning_rate=1e-5:1e-3:cubic: expected", "float"),
    (["--range", "learning_rate=0:1e-3:log"], "a log range needs 0 < lo", None),
    (["--range", "learning_rate=1e-3:1e-5"], "expected lo < hi", None),
    (["--range", "max_steps=1.5:10"], "--range max_steps=1.5:10: '1.5' is not of type int", "at least -1"),
    (["--range", "max_steps=-1:10"], "--range max_steps=-1:10: 0 is refused", "max_steps=0 trains nothing"),
    (["--range", "stride=0:100", "--max-seq-length", "64"], "100 is refused", "too large for max_seq_length"),
    (["--range", "mixed_precision=fp8,no"], "'fp8' is not valid; expected one of", "one of auto, fp16, bf16, no"),
    (["--range", "task_name=ner,classif"], "task_name is fixed (--task)", None),
    (["--range", "learning_rate=1e-5:1e-3", "--learning-rate", "1e-4"], "also given as a fixed value", None),
    (["--range", "seed=1:2", "--range", "seed=3:4"], "one --range per hyperparameter", None),
    ([], "range=None: expected at least one --range", None),
    (["--range", "seed=1:9", "--objective", "dev_f1"], "objective='dev_f1': expected one of the metrics classif logs",
     "dev_loss, dev_accuracy, dev_f1_macro, dev_f1_weighted"),
    (["--range", "seed=1:9", "--objective", "test_accuracy"], "objective='test_accuracy'", "optimistic"),
    (["--range", "seed=1:9", "--objective", "dev_accuracy"], "--maximize or --minimize", "dev_f1_macro, dev_loss"),
    (["--range", "seed=1:9", "--strategy", "hyperband", "--early-stopping", "auto"], "hyperband stops trials", None),
    (["--range", "seed=1:9", "--strategy", "hyperband"], "max_resource=None: expected with --strategy hyperband",
     None),
    (["--range", "seed=1:9", "--max-resource", "5"], "max_resource=5: expected no value without hyperband", None),
    (["--range", "seed=1:9", "--max-parallel", "5"], "max_parallel=5: expected a number of training jobs in [1, max_",
     None),
    (["--range", "seed=1:9", "--spot"], "no --spot with tune", None),
    (["--range", "seed=1:9", "--warm-start", "smtx-hp-missing"], "warm_start='smtx-hp-missing': expected the name",
     None),
]


@pytest.mark.parametrize("extra,first,second", REFUSED, ids=[" ".join(r[0]) or "no-range" for r in REFUSED])
def test_a_bad_range_objective_or_setting_is_refused_in_one_line_before_anything_is_created(
        aws: Clients, capsys, extra: list[str], first: str, second: str | None) -> None:
    status, out, err = _run(capsys, *TUNE, *extra)
    assert status == 2, out + err
    assert err.count("\n") == 1 and first in err, err
    assert second is None or second in err, err
    assert _nothing_created(aws)


def _driven(aws: Clients, capsys, trials: list[Trial], final: str = "Completed") -> tuple[str, TuningDriver]:
    name = _tune(capsys, "--range", "learning_rate=1e-5:1e-3:log", "--range", "max_steps=10:50")
    driver = TuningDriver(aws.sagemaker, REGION, name, trials, final)
    driver.start()
    return name, driver


TRIALS = [Trial({"learning_rate": "3e-05", "max_steps": "20"}, 0.61),
          Trial({"learning_rate": "0.0002", "max_steps": "40"}, 0.83),
          Trial({"learning_rate": "0.0009", "max_steps": "12"}, None, "Failed", "AlgorithmError: loss is nan"),
          Trial({"learning_rate": "5e-05", "max_steps": "50"}, 0.79)]


def test_following_shows_each_trial_and_the_best_so_far_until_the_tuning_job_ends(aws: Clients, capsys) -> None:
    name, driver = _driven(aws, capsys, TRIALS)
    lines: list[str] = []
    described = Poller(interval_s=0, timeout_s=60, sleep=driver.sleep).until(
        TuningFollower(aws, name, lines.append).poll, name)
    trial = f"{name}-00"
    shown = [line for line in lines if line.startswith(("trial ", "best so far"))]
    assert len(shown) == 6, lines  # four trials, and a new best twice
    assert shown[0].startswith(f"trial {trial}1-") and shown[0].endswith(
        ": Completed dev_f1_macro=0.610000 learning_rate=3e-05 max_steps=20")
    assert shown[1].startswith(f"best so far: {trial}1-") and "dev_f1_macro=0.610000" in shown[1]
    assert shown[3].startswith(f"best so far: {trial}2-") and "dev_f1_macro=0.830000" in shown[3]
    assert shown[4].endswith("Failed learning_rate=0.0009 max_steps=12 (AlgorithmError: loss is nan)")
    assert "best so far" not in shown[5]  # 0.79 does not beat 0.83
    said = outcome(described)
    assert f"tuning job {name}: Completed (3 Completed, 1 NonRetryableError)" in said
    assert f"best: {trial}2-" in said and f"deploy with: python -m launcher deploy --tuning-job {name}" in said


def test_follow_tuning_and_deploy_of_the_best_trial_through_the_command_line(aws: Clients, capsys) -> None:
    name, driver = _driven(aws, capsys, TRIALS[:2])
    driver.sleep(0)
    status, out, err = _run(capsys, "deploy", "--tuning-job", name, "--instance-type", "ml.m5.xlarge")
    assert status == 2 and err.count("\n") == 1, err
    assert f"tuning_job='{name}': expected a Completed or Stopped tuning job (it is InProgress" in err
    assert not aws.sagemaker.list_models()["Models"]
    driver.sleep(0)
    driver.sleep(0)  # no trial left: the tuning job ends Completed
    status, out, err = _run(capsys, "follow-tuning", name)
    assert status == 0, err
    assert out.count("\ntrial ") + out.startswith("trial ") == 2 and "best so far:" in out
    best = driver.best["TrainingJobName"]
    status, out, err = _run(capsys, "deploy", "--tuning-job", name, "--instance-type", "ml.m5.xlarge", "--no-wait")
    assert status == 0, err
    artifact = aws.sagemaker.describe_training_job(TrainingJobName=best)["ModelArtifacts"]["S3ModelArtifacts"]
    assert f"tuning job {name}: best trial {best}" in out and f"serving {artifact}" in out
    model = aws.sagemaker.list_models()["Models"][0]["ModelName"]
    assert aws.sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"] == artifact


def test_a_tuning_job_with_no_best_trial_is_not_deployed(aws: Clients, capsys) -> None:
    name, driver = _driven(aws, capsys, [Trial({"learning_rate": "1e-4", "max_steps": "10"}, None, "Failed", "oom")])
    driver.sleep(0)
    driver.sleep(0)
    status, out, err = _run(capsys, "follow-tuning", name)
    assert status == 0 and "best:" not in out, out
    status, out, err = _run(capsys, "deploy", "--tuning-job", name, "--instance-type", "ml.m5.xlarge")
    assert status == 2 and err.count("\n") == 1 and "expected a tuning job with a best trial" in err, err
    assert not aws.sagemaker.list_models()["Models"]


def test_stop_tuning_and_unknown_names(aws: Clients, capsys) -> None:
    name, driver = _driven(aws, capsys, TRIALS)
    driver.sleep(0)
    assert _run(capsys, "stop-tuning", name)[0] == 0
    status, out, err = _run(capsys, "follow-tuning", name)
    assert status == 1 and f"tuning job {name}: Stopped" in out and "best:" in out, out
    status, out, err = _run(capsys, "deploy", "--tuning-job", name, "--instance-type", "ml.m5.xlarge", "--no-wait")
    assert status == 0, err  # a stopped tuning job's finished best trial is final
    for command in (["follow-tuning", "smtx-hp-nope"], ["stop-tuning", "smtx-hp-nope"],
                    ["deploy", "--tuning-job", "smtx-hp-nope", "--instance-type", "ml.m5.xlarge"]):
        status, out, err = _run(capsys, *command)
        assert status == 2 and err == "error: tuning_job='smtx-hp-nope': expected the name of an existing tuning " \
                                      "job\n", (command, err)


def test_warm_start_from_a_finished_tuning_job_on_the_same_data_is_identical_data_and_algorithm(
        aws: Clients, capsys) -> None:
    parent, driver = _driven(aws, capsys, [])
    described = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=parent)
    data = described["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    again = [*TUNE[:2], data, *TUNE[3:], "--range", "seed=1:9", "--warm-start", parent]
    status, out, err = _run(capsys, *again)
    assert status == 2 and f"warm_start='{parent}': expected a tuning job that has ended (it is InProgress)" in err
    driver.sleep(0)  # no trial left: it ends
    for data_flag, expected in ((data, "IdenticalDataAndAlgorithm"), (str(EXAMPLES / "classif"), "TransferLearning")):
        status, out, err = _run(capsys, *TUNE[:2], data_flag, *TUNE[3:], "--range", "seed=1:9", "--warm-start",
                                parent)
        assert status == 0, err
        child = out.split("tuning job ", 1)[1].split(":", 1)[0]
        warm = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=child)["WarmStartConfig"]
        assert warm == {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                        "WarmStartType": expected}


def test_tune_follow_and_deploy_the_best_trial_over_http_against_a_moto_server(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """The same route through HTTP: a ThreadedMotoServer in this process (so the stand-ins apply), the launcher's
    own clients pointed at it by AWS_ENDPOINT_URL."""
    with in_process_moto_server() as url:
        for name, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "t",
                            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "none")}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        accept_tuning_calls()
        write_model_artifacts(REGION)
        clients = Clients(AwsSettings(region=REGION))
        status, out, err = _run(capsys, *TUNE, "--range", "learning_rate=1e-5:1e-3:log")
        assert status == 0, err
        name = out.split("tuning job ", 1)[1].split(":", 1)[0]
        assert f"follow with: python -m launcher follow-tuning {name}" in out
        driver = TuningDriver(clients.sagemaker, REGION, name, TRIALS[:2])
        driver.start()
        for _ in range(3):
            driver.sleep(0)
        status, out, err = _run(capsys, "follow-tuning", name)
        assert status == 0 and f"tuning job {name}: Completed (2 Completed)" in out, out + err
        status, out, err = _run(capsys, "deploy", "--tuning-job", name, "--instance-type", "ml.m5.xlarge",
                                "--no-wait")
        assert status == 0 and f"best trial {driver.best['TrainingJobName']}" in out, err
