"""The serving environment contract (tasks/serving_contract.py): one rule per variable, used by serve, the handler and
the launcher; and the settings TorchServe will apply (the real server is in tests/server/test_serve_contract.py)."""
from __future__ import annotations

import json

import pytest
import yaml

from entrypoints.serve import model_view
from tasks.serving_contract import VARIABLES, ServeConfig, ServeConfigError, WorkerContext
from tests.helpers import ROOT


def test_workers_always_and_the_rest_only_where_named():
    assert ServeConfig.from_env({}).overrides() == {"minWorkers": 1, "maxWorkers": 1}
    config = ServeConfig.from_env({"SAGEMAKER_TS_BATCH_SIZE": "4", "SAGEMAKER_TS_MAX_BATCH_DELAY": "1",
                                   "SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60"})
    assert config.overrides() == {"minWorkers": 3, "maxWorkers": 3, "batchSize": 4, "maxBatchDelay": 1,
                                  "responseTimeout": 60}
    assert ServeConfig.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "45"}).overrides()["responseTimeout"] == 45


@pytest.mark.parametrize("name, value", [("SAGEMAKER_TS_BATCH_SIZE", "0"), ("SAGEMAKER_TS_MAX_BATCH_DELAY", "-1"),
                                         # 0 would be TorchServe's 100 ms default, not "no wait"
                                         ("SAGEMAKER_TS_MAX_BATCH_DELAY", "0"),
                                         ("SAGEMAKER_MODEL_SERVER_WORKERS", "two"),
                                         ("SMTX_ASSEMBLE_WITH", "Lines")])
def test_a_bad_value_names_the_variable(name, value):
    with pytest.raises(ServeConfigError, match=name):
        ServeConfig.from_env({name: value})


@pytest.mark.parametrize("field", sorted(VARIABLES))
def test_every_variable_refuses_a_bad_value_naming_itself_and_what_it_expects(field):
    var = VARIABLES[field]
    if var.kind == "path":
        return
    bad = {"int": f"{var.high + 1}" if var.high is not None else "x", "bool": "maybe", "choice": "neither"}[var.kind]
    with pytest.raises(ServeConfigError) as info:
        ServeConfig.from_env({var.name: bad})
    assert str(info.value).startswith(f"{var.name}=") and var.expected() in str(info.value)
    assert getattr(ServeConfig.from_env({var.name: "  "}), field) == var.default  # blank is unset


@pytest.mark.parametrize("raw, value", [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)])
def test_one_rule_for_booleans(raw, value):
    # SAGEMAKER_BATCH=1 used to mean Batch Transform to serve and not to the handler
    from handlers.ts_handler import settings_from_env

    assert ServeConfig.from_env({"SAGEMAKER_BATCH": raw}).batch_transform is value
    assert settings_from_env({"SAGEMAKER_BATCH": raw}).inline_record_errors is value


def test_choices_are_case_insensitive_and_canonical():
    config = ServeConfig.from_env({"SAGEMAKER_BATCH_STRATEGY": "single_record", "SMTX_ASSEMBLE_WITH": "none"})
    assert (config.batch_strategy, config.assemble_with) == ("SINGLE_RECORD", "None")


def test_the_launcher_checks_a_value_by_the_containers_rule():
    assert VARIABLES["workers"].check(4) == "4" and VARIABLES["multi_model"].check(True) == "true"
    with pytest.raises(ServeConfigError, match="SAGEMAKER_MODEL_SERVER_WORKERS=0 is out of range"):
        VARIABLES["workers"].check(0)


def test_the_worker_context_round_trips_through_the_environment():
    context = WorkerContext(failure_dir="/w/f", busy_dir="/w/b", allowed_root="/opt/ml/models", max_response_bytes=9)
    assert WorkerContext.from_env({**context.to_env(), "OTHER": "x"}) == context
    assert WorkerContext().to_env() == {} and WorkerContext.from_env({}) == WorkerContext()


def test_the_model_view_links_the_archive_and_merges_its_settings(tmp_path):
    model = tmp_path / "opt" / "model"
    (model / "MAR-INF").mkdir(parents=True)
    (model / "tasks").mkdir()
    (model / "tasks" / "spec.py").write_text("x = 1\n")
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "model-config.yaml").write_text("batchSize: 8\nmaxBatchDelay: 1\nresponseTimeout: 120\n")
    manifest = {"runtime": "python", "model": {"modelName": "m", "handler": "ts_handler.py"}}
    (model / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest))
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}

    view = model_view(model, tmp_path / "store", {"batchSize": 2, "minWorkers": 1, "maxWorkers": 1})

    assert view == tmp_path / "store" / "model"
    assert yaml.safe_load((view / "model-config.yaml").read_text()) == {
        "batchSize": 2, "maxBatchDelay": 1, "responseTimeout": 120, "minWorkers": 1, "maxWorkers": 1}
    written = json.loads((view / "MAR-INF" / "MANIFEST.json").read_text())
    assert written["model"] == {**manifest["model"], "configFile": "model-config.yaml"}
    assert (view / "tasks" / "spec.py").is_symlink() and (view / "tasks" / "spec.py").read_text() == "x = 1\n"
    assert not (view / "tasks").is_symlink(), "folders are real: only files link into the archive"
    assert (view / "model.safetensors").resolve() == (model / "model.safetensors").resolve()
    assert {p: p.read_bytes() for p in model.rglob("*") if p.is_file()} == before, "the archive is left as it was"


def test_the_readme_table_is_the_declared_environment():

    from tasks.serving_contract import markdown_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- serving-environment")
    block = readme[readme.index("\n", start) + 1:readme.index("<!-- /serving-environment -->")].strip()
    assert block == markdown_table(), "README table drifted: paste the output of python -m tasks.serving_contract"
