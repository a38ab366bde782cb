"""deploy --capture and drift: the PSI arithmetic, capture records (text and BASE64), the report over a local
folder and over a transform --local pair, and against moto in-process: the endpoint config carries the
DataCaptureConfig, refusals create nothing, and drift ENDPOINT reads captures at SageMaker's layout."""
from __future__ import annotations

import base64
import io
import json
import math
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from launcher import drift
from launcher.aws import Clients
from tests.helpers.launcher_account import BUCKET, ENV, REGION
from tests.helpers.moto_sagemaker import offline_account, run_cli

MODEL = f"s3://{BUCKET}/models/m/model.tar.gz"
CAPTURE = f"s3://{BUCKET}/capture"
#: the test split: 'sports' and 'politics' half each, confident, three to five words
TEST_ROWS = [{"text": " ".join(["word"] * (3 + i % 3)), "gold": label, "pred": label, "proba": 0.9 + (i % 5) / 100}
             for i, label in enumerate(["sports", "politics"] * 20)]


# the arithmetic ------------------------------------------------------------------------------------------------
def test_identical_distributions_have_a_psi_of_zero() -> None:
    assert drift.psi([0.25, 0.25, 0.5], [0.25, 0.25, 0.5]) == 0.0
    same = drift.compare("x", [float(v) for v in range(100)], [float(v) for v in range(100)], 0.2)
    assert same is not None and same.psi == 0.0 and not same.flagged


def test_a_shifted_distribution_has_the_psi_worked_by_hand() -> None:
    # (0.7-0.5) ln(0.7/0.5) + (0.3-0.5) ln(0.3/0.5) = 0.2 * 0.33647 + 0.2 * 0.51083 = 0.16946
    assert drift.psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(0.2 * math.log(7 / 5) + 0.2 * math.log(5 / 3))
    assert drift.psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(0.16946, abs=1e-5)
    # an empty bin is raised to EPSILON: (1e-4 - 0.5) ln(1e-4/0.5) + (1 - 0.5) ln(1/0.5)
    expected = (drift.EPSILON - 0.5) * math.log(drift.EPSILON / 0.5) + 0.5 * math.log(2)
    assert drift.psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(expected)


def test_numeric_bins_are_the_reference_deciles_and_open_at_both_ends() -> None:
    reference = [float(v) for v in range(1, 11)]
    cuts = drift.numeric_bins(reference)
    assert len(cuts) == 9 and cuts[0] == pytest.approx(1.9)
    counts = drift.binned_counts([-100.0, 1.9, 1000.0], cuts)
    assert counts == {0: 2, 9: 1}  # a value on a cut point falls in the lower bin


def test_ner_labels_are_compared_by_entity_type() -> None:
    sample = drift.Sample()
    sample.add({"text": "Ada Lovelace wrote"}, {"pred": ["B-PER", "I-PER", "O"], "proba": [0.9, 0.8, 0.99]})
    assert sample.labels == ["PER", "PER", "O"] and sample.confidences == [0.9, 0.8, 0.99] and sample.words == [3.0]


# capture records -----------------------------------------------------------------------------------------------
def _capture_line(records: list[dict[str, Any]], answers: list[dict[str, Any]], jsonlines: bool = False,
                  base64_encoded: bool = False) -> str:
    if jsonlines:
        body_in = "".join(json.dumps(r) + "\n" for r in records)
        body_out = "".join(json.dumps(a) + "\n" for a in answers)
        content_type = "application/jsonlines"
    else:
        body_in, body_out = json.dumps({"data": records}), json.dumps({"predictions": answers})
        content_type = "application/json"

    def part(body: str) -> dict[str, str]:
        if base64_encoded:  # what SageMaker writes for a content type not listed in CaptureContentTypeHeader
            return {"observedContentType": content_type, "mode": "INPUT",
                    "data": base64.b64encode(body.encode()).decode(), "encoding": "BASE64"}
        return {"observedContentType": content_type, "mode": "INPUT", "data": body, "encoding": "JSON"}

    return json.dumps({"captureData": {"endpointInput": part(body_in), "endpointOutput": part(body_out)},
                       "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-12-07T10:00:00Z"},
                       "eventVersion": "0"})


@pytest.mark.parametrize("jsonlines", [False, True])
@pytest.mark.parametrize("base64_encoded", [False, True])
def test_capture_records_are_read_as_json_and_json_lines_in_text_or_base64(jsonlines: bool,
                                                                           base64_encoded: bool) -> None:
    records = [{"text": "one two"}, {"text": "three four five"}]
    answers = [{"pred": "sports", "proba": 0.9}, {"pred": "politics", "proba": 0.6}]
    sample = drift.Sample()
    drift.add_capture_lines(sample, [_capture_line(records, answers, jsonlines, base64_encoded)], "f.jsonl")
    assert (sample.records, sample.labels, sample.confidences, sample.words) == (
        2, ["sports", "politics"], [0.9, 0.6], [2.0, 3.0])


def test_a_line_that_is_not_a_capture_record_is_one_clear_error() -> None:
    with pytest.raises(drift.SettingError, match="f.jsonl line 1.*capture record"):
        drift.add_capture_lines(drift.Sample(), ['{"text": "not a capture"}'], "f.jsonl")


# the report, locally -------------------------------------------------------------------------------------------
def _checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "test_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TEST_ROWS))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 1.0}))
    return folder


def _drifted_traffic(n: int = 40) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Long inputs, nearly all 'sports', unsure answers: every feature moves."""
    records = [{"text": " ".join(["long"] * 30)} for _ in range(n)]
    answers = [{"pred": "sports" if i % 10 else "politics", "proba": 0.55} for i in range(n)]
    return records, answers


def test_drift_over_a_folder_of_capture_files_flags_every_feature(tmp_path: Path, capsys) -> None:
    hour = tmp_path / "captures" / "ep" / "AllTraffic" / "2026" / "12" / "07" / "10"
    hour.mkdir(parents=True)
    records, answers = _drifted_traffic()
    (hour / "a.jsonl").write_text("\n".join(_capture_line([r], [a]) for r, a in zip(records, answers)) + "\n")
    plot = tmp_path / "drift.png"
    status, out, _ = run_cli(capsys, ENV, "drift", str(tmp_path / "captures"), "--checkpoint",
                             str(_checkpoint(tmp_path)), "--plot", str(plot), "--fail-on-drift")
    assert status == 1
    assert "40 records against 40 test records" in out
    for name in ("label", "confidence", "input_words"):
        assert any(line.startswith(name) and "DRIFT" in line for line in out.splitlines()), out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drift_over_a_transform_local_pair_without_drift_exits_0(tmp_path: Path, capsys) -> None:
    inputs, outputs = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in TEST_ROWS))
    outputs.write_text("".join(json.dumps({"pred": r["pred"], "proba": r["proba"]}) + "\n" for r in TEST_ROWS))
    status, out, _ = run_cli(capsys, ENV, "drift", str(outputs), "--input", str(inputs), "--checkpoint",
                             str(_checkpoint(tmp_path)), "--fail-on-drift")
    assert status == 0 and "DRIFT" not in out
    assert [line.split()[1] for line in out.splitlines()[2:]] == ["0.000"] * 3


def test_drift_without_fail_on_drift_reports_and_exits_0(tmp_path: Path, capsys) -> None:
    inputs, outputs = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records, answers = _drifted_traffic()
    inputs.write_text("".join(json.dumps(r) + "\n" for r in records))
    outputs.write_text("".join(json.dumps(a) + "\n" for a in answers))
    status, out, _ = run_cli(capsys, ENV, "drift", str(outputs), "--input", str(inputs), "--checkpoint",
                             str(_checkpoint(tmp_path)))
    assert status == 0 and "DRIFT" in out


def test_a_checkpoint_without_test_predictions_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    status, _, err = run_cli(capsys, ENV, "drift", str(tmp_path), "--checkpoint", str(tmp_path / "empty"))
    assert status == 2 and "test_predictions.jsonl" in err and len(err.strip().splitlines()) == 1


def _endpoint(out: str) -> str:
    """The endpoint deploy reports ("endpoint NAME (config ..., model ...) serving ...")."""
    return next(line.split()[1] for line in out.splitlines() if line.startswith("endpoint ") and " (config " in line)


# moto, in process ----------------------------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Clients]:
    with offline_account(monkeypatch, tmp_path, REGION) as clients:
        clients.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        clients.s3.put_object(Bucket=BUCKET, Key="models/m/model.tar.gz", Body=_archive())
        yield clients


def _archive() -> bytes:
    """A training job's output archive: a checkpoint with its test split."""
    data = "".join(json.dumps(r) + "\n" for r in TEST_ROWS).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("test_predictions.jsonl")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("kind", [[], ["--async", "--output", f"s3://{BUCKET}/answers"]])
def test_deploy_capture_writes_the_data_capture_config(aws: Clients, capsys, kind: list[str]) -> None:
    status, out, err = run_cli(capsys, ENV, "deploy", "--model-data", MODEL, "--instance-type", "ml.m5.large",
                               "--capture", CAPTURE, "--capture-percent", "25", *kind)
    assert status == 0, err
    endpoint = _endpoint(out)
    config = aws.sagemaker.describe_endpoint_config(
        EndpointConfigName=aws.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True, "InitialSamplingPercentage": 25, "DestinationS3Uri": CAPTURE,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json", "application/jsonlines"]}}


@pytest.mark.parametrize("argv, named", [
    (["--serverless", "--memory-mb", "2048", "--max-concurrency", "1", "--capture", CAPTURE], "capture"),
    (["--capture", "bucket/capture"], "capture"),
    (["--capture", CAPTURE, "--capture-percent", "0"], "capture_percent"),
    (["--capture", CAPTURE, "--capture-percent", "101"], "capture_percent"),
    (["--capture-percent", "50"], "capture_percent"),
])
def test_capture_refusals_create_nothing(aws: Clients, capsys, argv: list[str], named: str) -> None:
    status, _, err = run_cli(capsys, ENV, "deploy", "--model-data", MODEL, *argv)
    assert status == 2 and err.startswith(f"error: {named}=") and len(err.strip().splitlines()) == 1, err
    assert not aws.sagemaker.list_models()["Models"] and not aws.sagemaker.list_endpoint_configs()[
        "EndpointConfigs"]


def test_drift_endpoint_reads_the_captures_at_sagemakers_layout(aws: Clients, capsys) -> None:
    status, out, _ = run_cli(capsys, ENV, "deploy", "--model-data", MODEL, "--instance-type", "ml.m5.large",
                             "--capture", CAPTURE)
    endpoint = _endpoint(out)
    records, answers = _drifted_traffic()
    for hour in ("09", "10"):  # two hours' files; a file of another variant is not read
        body = "\n".join(_capture_line([r], [a], base64_encoded=hour == "10") for r, a in zip(records, answers))
        aws.s3.put_object(Bucket=BUCKET, Key=f"capture/{endpoint}/AllTraffic/2026/12/07/{hour}/x.jsonl",
                          Body=body.encode())
    aws.s3.put_object(Bucket=BUCKET, Key=f"capture/{endpoint}/Other/2026/12/07/10/x.jsonl", Body=b"not json")
    status, out, err = run_cli(capsys, ENV, "drift", endpoint, "--model-data", MODEL, "--fail-on-drift")
    assert status == 1, err
    assert "80 records against 40 test records" in out and out.count("DRIFT") == 3


def test_drift_of_an_endpoint_without_capture_says_so(aws: Clients, capsys) -> None:
    status, out, _ = run_cli(capsys, ENV, "deploy", "--model-data", MODEL, "--instance-type", "ml.m5.large")
    status, _, err = run_cli(capsys, ENV, "drift", _endpoint(out), "--model-data", MODEL)
    assert status == 2 and "deploy --capture" in err
