"""The serving environment -> settings TorchServe will apply (the real server is in test_serve_contract.py)."""
from __future__ import annotations

import json

import pytest
import yaml

from entrypoints.serve import model_view
from entrypoints.serve_config import ServeConfig, ServeConfigError


def test_workers_always_and_the_rest_only_where_named():
    assert ServeConfig.from_env({}).overrides() == {"minWorkers": 1, "maxWorkers": 1}
    config = ServeConfig.from_env({"SAGEMAKER_TS_BATCH_SIZE": "4", "SAGEMAKER_TS_MAX_BATCH_DELAY": "0",
                                   "SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60"})
    assert config.overrides() == {"minWorkers": 3, "maxWorkers": 3, "batchSize": 4, "maxBatchDelay": 0,
                                  "responseTimeout": 60}
    assert ServeConfig.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "45"}).overrides()["responseTimeout"] == 45


@pytest.mark.parametrize("name, value", [("SAGEMAKER_TS_BATCH_SIZE", "0"), ("SAGEMAKER_TS_MAX_BATCH_DELAY", "-1"),
                                         ("SAGEMAKER_MODEL_SERVER_WORKERS", "two"),
                                         ("SMTX_ASSEMBLE_WITH", "Lines")])
def test_a_bad_value_names_the_variable(name, value):
    with pytest.raises(ServeConfigError, match=name):
        ServeConfig.from_env({name: value})


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
