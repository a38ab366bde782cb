"""examples/sagemaker_walkthrough.ipynb runs top to bottom against a moto server, so it cannot rot."""
from __future__ import annotations

from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import ROOT
from tests.helpers.moto_sagemaker import in_process_moto_server, simulate_sagemaker

REGION = "eu-west-1"
BUCKET = "smtx-walkthrough"
NOTEBOOK = ROOT / "examples" / "sagemaker_walkthrough.ipynb"


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))


def test_walkthrough_runs_against_moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with in_process_moto_server() as url:
        env = {  # the kernel inherits this process's environment
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "SMTX_POLL_S": "0",
            "SMTX_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/SageMakerExecution",
            "SMTX_TRAINING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-train:1",
            "SMTX_SERVING_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx-serve:1",
            "SMTX_S3_PREFIX": f"s3://{BUCKET}/walkthrough",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3", region_name=REGION, endpoint_url=url).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        simulate_sagemaker(REGION)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = _text(nb)
    assert "training job smtx-classif-" in text and ": Completed" in text
    assert "InService" in text and "'pred': 'positive'" in text
    assert "60 output lines for 60 input lines" in text
    assert "'SAGEMAKER_MAX_PAYLOAD_IN_MB': '4', 'SAGEMAKER_TS_RESPONSE_TIMEOUT': '60'" in text  # serverless
    assert "0-2 instances, 5 backlog per instance" in text and "starts an instance when requests wait" in text
    assert "async answer: 60 lines for 60 records" in text
    assert text.count("deleted endpoint smtx-ep-") == 3 and "deleted endpoint smtx-mme-" in text
    assert text.count("removed autoscaling of endpoint/smtx-ep-") == 1
