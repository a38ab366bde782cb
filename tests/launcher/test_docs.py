"""docs/sagemaker.md's offline routes, run exactly as written: in one process (mock_aws), and the command line
against a real ``moto_server`` process started here (so nothing in this process can help moto along)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.helpers import ROOT

DOC = ROOT / "docs" / "sagemaker.md"
BIN = Path(sys.executable).parent
DOCUMENTED_URL = "http://127.0.0.1:5000"


def _block(heading: str, language: str) -> str:
    """The first ```language block after ``heading`` in docs/sagemaker.md."""
    text = DOC.read_text(encoding="utf-8")
    after = text[text.index(heading):]
    match = re.search(rf"```{language}\n(.*?)```", after, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """This environment without any AWS or SMTX setting, so only what the docs set applies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMTX_"))}
    return {**env, "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "PYTHONPATH": str(ROOT),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"), "PATH": f"{BIN}:{env['PATH']}"}


@pytest.fixture
def moto_server(tmp_path: Path) -> Iterator[str]:
    """A ``moto_server`` process on a free loopback port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "moto.log").open("w")
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_command_line_route_runs_as_written_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    script = _block("### Against a moto server", "bash")
    assert DOCUMENTED_URL in script
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the docs run from the repository root
    run = subprocess.run(["bash", "-c", "set -o pipefail\n" + script.replace(DOCUMENTED_URL, moto_server)],
                         cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert "created bucket smtx-try\ns3://smtx-try/smtx/classif-classif-" in run.stdout
    assert re.search(r"training job smtx-classif-[\w-]+: Completed", run.stdout), run.stdout
    assert '\n{"pred": "positive"}\n' in run.stdout
    assert re.search(r"transform job smtx-transform-[\w-]+ is Completed but wrote no s3://smtx-try/smtx/"
                     r"smtx-transform-[\w-]+/output/records.jsonl.out", run.stderr), run.stderr
    assert "moto transforms nothing" in run.stdout and not (tmp_path / "records.out").exists()
    assert re.search(r"\ndeleted endpoint smtx-ep-[\w-]+\ndeleted endpoint config smtx-ep-", run.stdout), run.stdout
    assert "not found" not in run.stdout


def test_the_python_route_runs_as_written_in_one_process(tmp_path: Path) -> None:
    code = _block("### In one Python process", "python")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(tmp_path), capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[{'pred': 'positive'}]"


def test_serverless_async_autoscaling_and_cleanup_run_as_written_against_a_moto_server(moto_server: str,
                                                                                       tmp_path: Path) -> None:
    script = _block("### Serverless, asynchronous and autoscaling against the same moto server", "bash")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    run = subprocess.run(["bash", "-c", "set -o pipefail\n" + script.replace(DOCUMENTED_URL, moto_server)],
                         cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    out = run.stdout
    assert re.search(r"endpoint smtx-ep-[\w-]+: InService\n.*\n.*\nvariant AllTraffic: model smtx-ep-[\w-]+, "
                     r"serverless 3072 MB, 5 at once", out), out
    assert "0-2 instances, 5 backlog per instance" in out
    assert "starts an instance when requests wait and none runs" in out
    assert re.search(r"queued s3://smtx-try/smtx/async-input/smtx-async-[\w-]+/records.jsonl: answer at s3://", out)
    assert '\n{"pred": "positive"}\n' in out and "no log lines yet" in out
    assert re.search(r"smtx-ep-[\w-]+\s+InService\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+ml\.m5\.xlarge x1", out), out
    assert out.count("removed autoscaling") == 1 and "deleted alarm" in out
    assert re.search(r"deleted \d+ objects", out) and "not found" not in out


def test_data_capture_and_drift_run_as_written_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    script = _block("### Data capture and drift against the same moto server", "bash")
    run = subprocess.run(["bash", "-c", "set -o pipefail\n" + script.replace(DOCUMENTED_URL, moto_server)],
                         cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    out = run.stdout
    assert re.search(r"data capture: 50% of requests and answers to s3://smtx-capture/capture/smtx-ep-", out), out
    assert "1 records against 2 test records" in out, out
    assert re.search(r"\nlabel\s+\d+\.\d+\s+DRIFT\s+negative=50% positive=50%\s+negative=100%", out), out
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"


def test_the_registry_and_pipeline_run_as_written_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    script = _block("### The Model Registry and a pipeline against the same moto server", "bash")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    run = subprocess.run(["bash", "-c", "set -o pipefail\n" + script.replace(DOCUMENTED_URL, moto_server)],
                         cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    out, version = run.stdout, "arn:aws:sagemaker:eu-west-1:123456789012:model-package/sentiment/1"
    assert f"registered {version} (version 1, PendingManualApproval)" in run.stderr  # tee'd there
    assert "is PendingManualApproval, not Approved" in run.stderr and "deploy refused: exit 2" in out
    assert f"{version}: PendingManualApproval -> Approved (test F1 0.88 beats the live 0.85)" in out
    assert re.search(rf"{re.escape(version)}\s+Approved\s+\d{{4}}-", out), out
    assert re.search(r"deleted endpoint smtx-ep-[\w-]+\ndeleted endpoint config smtx-ep-[\w-]+\ndeleted model", out)
    assert "created pipeline arn:aws:sagemaker:eu-west-1:123456789012:pipeline/nightly" in out
    assert re.search(r"run arn:aws:sagemaker:eu-west-1:123456789012:pipeline/nightly/execution/\w+: Succeeded\n"
                     r"  steps: not readable \(An error occurred \(500\) when calling the ListPipelineExecutionSteps",
                     out), out


def test_tuning_runs_as_written_against_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    script = _block("### Tuning against the same moto server", "bash")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    run = subprocess.run(["bash", "-c", "set -o pipefail\n" + script.replace(DOCUMENTED_URL, moto_server)],
                         cwd=tmp_path, env=_clean_env(tmp_path), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    out, err = run.stdout, run.stderr
    assert ("Bayesian {'Type': 'Maximize', 'MetricName': 'dev_f1_macro'} ['ContinuousParameterRanges', "
            "'IntegerParameterRanges']") in out, out
    assert "{'task_name': 'classif'}" in out
    assert "'team': 'nlp'" in out and "'smtx:command': 'tune'" in out and "'smtx:task': 'classif'" in out
    assert "error: --range warmup_ratio=0:2: 2.0 is refused" in err and "refused with exit 2" in out
    assert re.search(r"tuning job smtx-hp-[\w-]+: best trial FakeTrainingJobName", out), out
    assert "error: training_job='FakeTrainingJobName': expected the name of an existing training job" in err, err
    assert "moto's best trial does not exist" in out
