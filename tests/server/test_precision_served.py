"""The default CPU path through the real server: `python -m entrypoints serve` with SMTX_PRECISION=auto serves the
path the table picks for this CPU, says so in its log, and its answers over HTTP score what the model card says;
a bad SMTX_PRECISION stops serve with one line naming the variable and its values."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from runtimes.checkpoint import read_serving
from runtimes.cpu import read_cpu
from runtimes.precision import choose_path
from tasks.kinds import task_kind
from tests.helpers import ROOT
from tests.helpers.serving_fixtures import Serve, post_json, train_and_archive
from training.data import load_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classif(tmp_path_factory, tiny_model_dir, small_data):
    root = tmp_path_factory.mktemp("precision-served")
    return train_and_archive("classif", "bert", "classif", small_data("classif"), False, tiny_model_dir("bert"), root)


@pytest.mark.parametrize("requested", ["auto", "fp32"])
def test_serve_answers_on_the_chosen_path_and_scores_what_the_card_says(tmp_path, classif, requested):
    base = tmp_path / "ml"
    shutil.copytree(classif.extracted, base / "model")
    serving = read_serving(classif.extracted)
    expected, _ = choose_path(serving.paths, read_cpu().kind, requested)
    server = Serve(base, SMTX_PRECISION=requested)
    try:
        server.wait_ping()
        test = load_dataset(classif.data, "classif", False).test
        status, _, body = post_json(server.url + "/invocations", {"data": [{"text": r.text} for r in test]})
        assert status == 200, body
        preds = json.loads(body)["predictions"]
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    cpu = read_cpu()
    said = re.search(rf"serving on the CPU \({re.escape(cpu.model)}, {cpu.kind}\) with (\w+) (\w+): ", log)
    assert said, log[-3000:]
    assert said.groups() == (expected.runtime, expected.precision)
    kind = task_kind("classif")
    spec = json.loads((classif.extracted / "task_spec.json").read_text())
    score = kind.score(spec["labels"], [r.label for r in test], preds)[kind.primary_metric]
    assert expected.scores is not None and score == pytest.approx(expected.scores["test"], abs=1e-9)


def test_a_bad_precision_stops_serve_naming_the_variable(tmp_path, classif):
    base = tmp_path / "ml"
    shutil.copytree(classif.extracted, base / "model")
    proc = subprocess.run([sys.executable, "-m", "entrypoints", "serve"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"SAGEMAKER_BASE_DIR": str(base), "SMTX_PRECISION": "fp8",
                                            "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr  # serve logs to its output, where SageMaker's CloudWatch stream reads it
    assert "Traceback" not in out
    assert ("cannot serve: SMTX_PRECISION='fp8' is not valid; expected one of auto, fp32, int8, bf16, onnx-fp32, "
            "onnx-int8, openvino-fp32, openvino-bf16") in out, out
