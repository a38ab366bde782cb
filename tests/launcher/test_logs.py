"""logs, describe and list: what the launcher shows of what runs, and how long it follows."""
from __future__ import annotations

import re

import pytest

from launcher.aws import Clients
from launcher.cli import build_parser
from tests.helpers.launcher_account import ENV, MODEL_DATA, cli
from tests.helpers.moto_sagemaker import write_log_lines


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
def test_timeout_and_poll_are_accepted_after_the_command_and_a_follow_says_what_it_sees(account: Clients,
                                                                                        capsys) -> None:
    """Issue 23, defect 7: global flags after the command, and a followed log that says what it sees."""
    status, out, err = cli(capsys, "logs", "--endpoint", "smtx-ep-x", "--follow", "--timeout-s", "0.2",
                           "--poll-s", "0.05")
    assert status == 0 and out == "no log lines yet; following (Ctrl-C or --timeout-s ends it)\n"
    assert err == "stopped following after 0.2 s (--timeout-s)\n"
    write_log_lines(account.logs, "/aws/sagemaker/Endpoints/smtx-ep-x", "AllTraffic/i-0abc", ["model loaded", "ready"])
    status, out, _ = cli(capsys, "logs", "--endpoint", "smtx-ep-x", "--follow", "--timeout-s", "0.2")
    assert status == 0 and out == "model loaded\nready\n"
    with pytest.raises(SystemExit) as refused:  # --endpoint is not read as an abbreviation of --endpoint-url
        build_parser(ENV).parse_args(["describe", "--endpoint", "smtx-ep-x"])
    assert refused.value.code == 2 and "unrecognized arguments: --endpoint" in capsys.readouterr().err


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def test_logs_describe_and_list_show_what_serves(simulated_account: Clients,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "deploy", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge", "--instance-count",
              "2", "--tag", "team=nlp")[1]
    name = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    assert cli(capsys, "logs", "--endpoint", name)[:2] == (0, "no log lines yet\n")
    write_log_lines(simulated_account.logs, f"/aws/sagemaker/Endpoints/{name}", "AllTraffic/i-0abc", ["model loaded"])
    status, out, _ = cli(capsys, "logs", "--endpoint", name, "--follow")  # bounded by --timeout-s
    assert status == 0 and out == "model loaded\n"
    status, out, _ = cli(capsys, "describe", name)
    assert status == 0 and f"endpoint {name}: InService" in out and "ml.m5.xlarge x2" in out
    assert "autoscaling: none" in out and "team=nlp" in out and "smtx:command=deploy" in out
    status, _, err = cli(capsys, "describe", "smtx-ep-missing")
    assert status == 2 and "endpoint='smtx-ep-missing': expected an existing endpoint" in err
    status, out, _ = cli(capsys, "list")
    row = next(line for line in out.splitlines() if line.strip().startswith(name) and "InService" in line)
    assert re.search(r"InService\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+ml\.m5\.xlarge x2", row), row


def _archive_with_paths(clients: Clients, key: str) -> str:
    """A model.tar.gz whose serving.json gated the CPU paths (as make archive writes it: serving.json first)."""
    import io
    import json
    import tarfile

    from tasks.serving_manifest import ServingManifest, ServingPath

    paths = (ServingPath(name="onnx-fp32", runtime="onnx", precision="fp32", file="model.onnx", passed=True,
                         gate="parity", scores={"metric": "f1_macro", "dev": 0.91, "test": 0.9}),
             ServingPath(name="onnx-int8", runtime="onnx", precision="int8", file="model.int8.onnx", passed=False,
                         gate="dev", reason="dev_f1_macro is 0.8800 with int8 against 0.9100 with fp32",
                         scores={"metric": "f1_macro", "dev": 0.88, "test": None}),
             ServingPath(name="openvino-bf16", runtime="openvino", precision="bf16", file="model.openvino.xml",
                         passed=True, gate="dev", scores={"metric": "f1_macro", "dev": 0.91, "test": 0.8995}))
    manifest = ServingManifest(runtime="onnx", onnx_file="model.onnx", paths=paths)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, body in (("serving.json", json.dumps(manifest.to_dict()).encode()), ("model.onnx", b"x" * 1024)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    clients.s3.put_object(Bucket="smtx-account", Key=key, Body=buffer.getvalue())
    return f"s3://smtx-account/{key}"


def test_describe_shows_what_the_endpoint_serves_and_the_gated_paths(simulated_account: Clients,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The endpoint's precision in describe, through its archive's serving.json (read from S3 as a stream)."""
    data = _archive_with_paths(simulated_account, "models/gated/model.tar.gz")
    status, out, err = cli(capsys, "deploy", "--model-data", data, "--instance-type", "ml.c5.xlarge")
    assert status == 0, err
    name = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    status, out, _ = cli(capsys, "describe", name)
    assert status == 0, out
    assert ("  serves: SMTX_PRECISION=auto (the fastest passed path the instance's CPU runs natively; the endpoint's "
            "log line 'serving on the CPU ...' says which)") in out
    assert "  gated paths: onnx-fp32 (f1_macro dev 0.9100 · test 0.9000), openvino-bf16 (f1_macro dev 0.9100 · " \
           "test 0.8995)" in out
    assert "  not served: onnx-int8: dev_f1_macro is 0.8800 with int8 against 0.9100 with fp32" in out


def test_describe_says_when_the_archive_cannot_be_read(simulated_account: Clients,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "deploy", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge")[1]
    name = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    status, out, _ = cli(capsys, "describe", name)
    assert status == 0 and "  serves: SMTX_PRECISION=auto; the archive's serving.json could not be read (" in out
