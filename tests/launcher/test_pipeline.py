"""pipeline create|start|describe: the definition (validated against SageMaker's published pipeline-definition JSON
schema, and built by train's and register's own request builders), its references, and the commands against moto
in process: created and updated, refusals that create nothing, a run that registered and one that missed its
condition.

The schema is aws-sagemaker-mlops/sagemaker-model-building-pipeline-definition-JSON-schema's
``schema/pipeline-definition.schema.json`` (commit b4012b0). No PyPI package ships it (checked: sagemaker 2.257.7,
sagemaker-core 2.27.0, sagemaker-mlops 1.27.0) and its repository states no licence, so it is not copied here:
``SMTX_PIPELINE_SCHEMA=/path/to/pipeline-definition.schema.json`` turns the schema test on (docs/sagemaker.md says
how to fetch it). The schema predates parts of the language SageMaker and its own SDK use; ``EXTENSIONS`` adds
exactly those (a test shows each one is needed).

moto 5.2.5 runs no step (an execution is "Succeeded" at once) and has no ListPipelineExecutionSteps: the steps a
run would list are given here, in SageMaker's response shape."""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse

from launcher import pipeline, registry
from launcher.aws import Clients
from launcher.cli import build_parser
from launcher.cli.pipeline import config_for
from launcher.jobs.training import training_job_request
from tests.helpers.moto_sagemaker import offline_account, run_cli

REGION = "eu-west-1"
BUCKET = "smtx-pipeline"
DATA = f"s3://{BUCKET}/data/classif"
ENV = {"SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
       "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1",
       "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
       "SMTX_GPU_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:1-gpu",
       "SMTX_S3_PREFIX": f"s3://{BUCKET}/smtx"}
CREATE = ["pipeline", "create", "nightly", "--data", DATA, "--task", "classif", "--group", "sentiment",
          "--objective", "test_f1_macro", "--threshold", "0.8"]


def _config(*extra: str) -> pipeline.PipelineConfig:
    from launcher.cli.train import training_config

    args = build_parser(ENV).parse_args([*CREATE, *extra])
    return config_for(args, training_config)


# the definition --------------------------------------------------------------------------------------------------
def _schema_value(definitions: dict[str, Any], name: str, *extra: dict[str, Any]) -> None:
    definitions[name] = {"oneOf": [*definitions[name]["oneOf"], *extra]}


def _allow_join_and_json_get(definitions: dict[str, Any]) -> None:
    # the schema defines Std:Join but no argument takes it, and as written it needs "Values" while it forbids every
    # key (additionalProperties false, no properties): made what SageMaker reads, {"On": ..., "Values": [...]}.
    # Std:JsonGet (a property file's value) it lacks
    definitions["JoinFunction"] = {"type": "object", "required": ["Std:Join"], "additionalProperties": False,
                                   "properties": {"Std:Join": {"type": "object", "required": ["Values"],
                                                               "additionalProperties": False, "properties": {
                                                                   "On": {"type": "string"},
                                                                   "Values": {"type": "array"}}}}}
    definitions["JsonGetFunction"] = {"type": "object", "required": ["Std:JsonGet"], "additionalProperties": False,
                                      "properties": {"Std:JsonGet": {"type": "object", "required": ["PropertyFile",
                                                                                                    "Path"]}}}
    join, json_get = {"$ref": "#/definitions/JoinFunction"}, {"$ref": "#/definitions/JsonGetFunction"}
    _schema_value(definitions, "StringArgumentValue", join)
    for name in ("FloatArgumentValue", "IntegerArgumentValue"):
        _schema_value(definitions, name, json_get)


def _allow_property_files(definitions: dict[str, Any]) -> None:
    definitions["ProcessingStep"]["properties"]["PropertyFiles"] = {"type": "array", "items": {
        "type": "object", "required": ["PropertyFileName", "OutputName", "FilePath"]}}


def _allow_newer_register_fields(definitions: dict[str, Any]) -> None:
    # CreateModelPackage fields newer than the schema, which the SDK's RegisterModel step sends too
    # (sagemaker 2.257.7, sagemaker/workflow/_utils.py: get_create_model_package_request minus 3 keys)
    fields = definitions["RegisterModelStep"]["properties"]["Arguments"]["properties"]
    for name in ("ModelApprovalStatus", "Tags", "Domain", "Task", "CustomerMetadataProperties",
                 "AdditionalInferenceSpecifications"):
        fields[name] = {}


#: what this definition needs beyond the published schema, each an addition SageMaker itself accepts
EXTENSIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Std:Join and Std:JsonGet values": _allow_join_and_json_get,
    "a Processing step's PropertyFiles": _allow_property_files,
    "RegisterModel's newer CreateModelPackage fields": _allow_newer_register_fields,
}


@pytest.fixture(scope="module")
def published_schema() -> dict[str, Any]:
    path = os.environ.get("SMTX_PIPELINE_SCHEMA")
    if not path:
        pytest.skip("SMTX_PIPELINE_SCHEMA is not set (the published schema is not shipped: see this module's doc)")
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _validator(schema: dict[str, Any], skip: str | None = None) -> Any:
    import jsonschema

    extended = copy.deepcopy(schema)
    for name, extend in EXTENSIONS.items():
        if name != skip:
            extend(extended["definitions"])
    return jsonschema.Draft7Validator(extended)


def test_the_definition_is_valid_against_the_published_schema(published_schema: dict[str, Any]) -> None:
    for extra in ([], ["--minimize"], ["--kms-key", "alias/ml", "--subnet", "subnet-0abc1234",
                                                    "--security-group", "sg-0abc1234", "--tag", "team=nlp"]):
        definition = pipeline.definition(_config(*extra))
        errors = [f"{list(e.absolute_path)}: {[c.message[:300] for c in e.context][-4:]}"
                  for e in _validator(published_schema).iter_errors(definition)]
        assert errors == [], errors


@pytest.mark.parametrize("extension", list(EXTENSIONS))
def test_each_extension_of_the_schema_is_needed(published_schema: dict[str, Any], extension: str) -> None:
    assert not _validator(published_schema, skip=extension).is_valid(pipeline.definition(_config()))


def test_the_train_step_is_the_training_job_request_train_sends_less_its_name() -> None:
    config = _config("--num-train-epochs", "2")
    step = pipeline.definition(config)["Steps"][0]
    expected = training_job_request("any-name", config.training)
    del expected["TrainingJobName"]
    assert step == {"Name": "Train", "Type": "Training", "Arguments": expected}
    assert float(step["Arguments"]["HyperParameters"]["num_train_epochs"]) == 2


def test_the_register_step_is_the_version_register_creates_for_the_runs_archive_and_scores() -> None:
    config = _config()
    check = pipeline.definition(config)["Steps"][2]
    register = check["Arguments"]["IfSteps"][0]
    assert register["Type"] == "RegisterModel"
    arguments = register["Arguments"]
    metrics = arguments["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert arguments == registry.package_request(
        "sentiment", "classif", pipeline.ARCHIVE, metrics, ENV["SMTX_SERVING_IMAGE"], ENV["SMTX_GPU_IMAGE"],
        config.training.placement, description=arguments["ModelPackageDescription"])
    assert arguments["ModelApprovalStatus"] == "PendingManualApproval"
    assert arguments["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def _expressions(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            yield value["Get"]
        for item in value.values():
            yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def _all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        yield from _all_steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))


def test_every_reference_names_a_step_a_property_file_or_a_parameter_that_exists() -> None:
    definition = pipeline.definition(_config())
    steps = {step["Name"]: step for step in _all_steps(definition["Steps"])}
    parameters = {p["Name"] for p in definition["Parameters"]}
    references = list(_expressions(definition))
    assert len(references) >= 5
    for reference in references:
        kind, name, *rest = reference.split(".")
        if kind == "Steps":
            assert name in steps, reference
            if rest[0] == "PropertyFiles":
                assert rest[1] in {f["PropertyFileName"] for f in steps[name].get("PropertyFiles", [])}
        elif kind == "Parameters":
            assert name in parameters, reference
        else:
            assert reference == "Execution.PipelineExecutionId"
    # the condition reads what entrypoints/evaluate.py writes: {"test": {score: value}} in evaluation.json
    condition = steps["CheckObjective"]["Arguments"]["Conditions"][0]
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "test.f1_macro"
    assert steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == \
        ["python3", "-m", "entrypoints", "evaluate"]
    assert condition["Type"] == "GreaterThanOrEqualTo"


def test_a_regression_error_is_minimized_and_a_miss_ends_in_a_fail_step_that_says_why() -> None:
    args = [a if a not in ("classif", "test_f1_macro") else {"classif": "regression", "test_f1_macro": "test_mse"}[a]
            for a in CREATE[2:]]
    from launcher.cli.train import training_config

    config = config_for(build_parser(ENV).parse_args(["pipeline", "create", *args]), training_config)
    check = pipeline.definition(config)["Steps"][2]["Arguments"]
    assert check["Conditions"][0]["Type"] == "LessThanOrEqualTo"
    message = check["ElseSteps"][0]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[0] == "test_mse =" and "above ObjectiveThreshold" in message[2]
    assert "nothing was registered in sentiment" in message[-1]


# the commands against moto ------------------------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for split in ("train", "dev", "test"):
            clients.s3.put_object(Bucket=BUCKET, Key=f"data/classif/{split}.csv", Body=b"text\tlabels\na\tb\n")
        yield clients


def test_create_then_create_again_updates_the_same_pipeline(aws: Clients, capsys) -> None:
    status, out, err = run_cli(capsys, ENV, *CREATE, "--tag", "team=nlp")
    assert status == 0, err
    assert "created pipeline arn:aws:sagemaker:eu-west-1:123456789012:pipeline/nightly" in out
    assert "when test_f1_macro >= 0.8" in out
    described = aws.sagemaker.describe_pipeline(PipelineName="nightly")
    assert json.loads(described["PipelineDefinition"]) == pipeline.definition(_config("--tag", "team=nlp"))
    assert described["RoleArn"] == ENV["SMTX_SAGEMAKER_ROLE"]
    tags = aws.sagemaker.list_tags(ResourceArn=described["PipelineArn"])["Tags"]
    assert {"Key": "smtx:command", "Value": "pipeline"} in tags and {"Key": "team", "Value": "nlp"} in tags
    status, out, _ = run_cli(capsys, ENV, *CREATE[:-1], "0.9")
    assert status == 0 and "updated pipeline" in out
    updated = json.loads(aws.sagemaker.describe_pipeline(PipelineName="nightly")["PipelineDefinition"])
    assert updated["Parameters"][0]["DefaultValue"] == 0.9
    assert len(aws.sagemaker.list_pipelines()["PipelineSummaries"]) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"--objective": "test_bleu"}, "objective="),
    ({"--objective": "dev_f1_macro"}, "objective="),
    ({"create": "bad_name"}, "name="),
    ({"--group": "bad group"}, "group="),
    ({"--data": "examples/data/classif"}, "data="),
    ({"--data": f"s3://{BUCKET}/data/empty"}, "data="),
    ({"--threshold": "nan"}, "threshold="),
    ({"--spot": ""}, "spot="),
    ({"--evaluation-instance-type": "ml.nonsense.xlarge"}, "instance_type="),
])
def test_bad_input_is_one_line_exit_2_and_creates_no_pipeline(aws: Clients, capsys, change: dict[str, str],
                                                              field: str) -> None:
    argv = list(CREATE)
    for flag, value in change.items():  # the value after ``flag`` replaced, or the flag (and value) added
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value] if value else [flag]
    status, _, err = run_cli(capsys, ENV, *argv)
    assert status == 2 and err.count("\n") == 1 and field in err, err
    assert aws.sagemaker.list_pipelines()["PipelineSummaries"] == []
    if change.get("--objective") == "test_bleu":
        assert "test_accuracy, test_f1_macro, test_f1_weighted" in err


def test_start_and_describe_of_a_missing_pipeline_are_exit_2(aws: Clients, capsys) -> None:
    for action in ("start", "describe"):
        status, _, err = run_cli(capsys, ENV, "pipeline", action, "nope")
        assert status == 2 and "pipeline='nope'" in err, err


def _steps_answer(monkeypatch: pytest.MonkeyPatch, steps: list[dict[str, Any]]) -> None:
    """Give moto the ListPipelineExecutionSteps it lacks, answering ``steps`` (newest first, as SageMaker does)."""
    monkeypatch.setattr(SageMakerResponse, "list_pipeline_execution_steps",
                        lambda self: ActionResult({"PipelineExecutionSteps": steps}), raising=False)


def _run(aws: Clients, capsys, *start: str) -> str:
    assert run_cli(capsys, ENV, *CREATE)[0] == 0
    status, out, err = run_cli(capsys, ENV, "pipeline", "start", "nightly", *start)
    assert status == 0, err
    return re.search(r"started (\S+)", out).group(1)  # type: ignore[union-attr]


def test_start_passes_the_threshold_and_describe_shows_what_was_registered(aws: Clients, capsys,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    arn = _run(aws, capsys, "--threshold", "0.75")
    parameters = aws.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert parameters["PipelineParameters"] == [{"Name": "ObjectiveThreshold", "Value": "0.75"}]
    version = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/sentiment/3"
    _steps_answer(monkeypatch, [
        {"StepName": "Register", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": version}}},
        {"StepName": "CheckObjective", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": "arn:p"}}},
        {"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {"TrainingJob": {"Arn": "arn:t"}}}])
    status, out, _ = run_cli(capsys, ENV, "pipeline", "describe", "nightly")
    assert status == 0 and f"run {arn}: Succeeded" in out
    assert f"registered {version} (PendingManualApproval" in out


def test_a_run_that_misses_its_condition_registers_nothing_and_says_why(aws: Clients, capsys,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    arn = _run(aws, capsys)
    why = "test_f1_macro = 0.61 is below ObjectiveThreshold = 0.8 ; nothing was registered in sentiment"
    _steps_answer(monkeypatch, [
        {"StepName": "ObjectiveMissed", "StepStatus": "Failed", "FailureReason": why,
         "Metadata": {"Fail": {"ErrorMessage": why}}},
        {"StepName": "CheckObjective", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "False"}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": "arn:p"}}},
        {"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {"TrainingJob": {"Arn": "arn:t"}}}])
    status, out, _ = run_cli(capsys, ENV, "pipeline", "describe", "nightly", "--execution", arn)
    assert status == 0
    assert f"nothing registered: CheckObjective was False: {why}" in out
    assert "CheckObjective   Succeeded  Condition False" in out
    assert aws.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
