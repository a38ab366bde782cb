"""transform, follow-transform and stop-transform: Batch Transform against moto (the Python API and the command
line), and ``transform --local`` against a small HTTP server started here on 127.0.0.1 (port chosen by the OS)."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from launcher.aws import TRANSFORM_LOG_GROUP, Clients
from launcher.cli import main
from launcher.endpoints.deploy import create_model
from launcher.errors import JobFailed, ServerUnreachable, SettingError
from launcher.jobs.batches import BYTES_PER_MB
from launcher.jobs.local_transform import invocations_url, run_local_transform
from launcher.jobs.transform import TransformConfig, run_transform, start_transform_job, wait_for_transform
from tests.helpers.launcher_account import (
    BUCKET,
    INSTANT,
    KEY,
    MISSING,
    MODEL_DATA,
    REGION,
    SERVING,
    backend,
    cli,
    create_bucket,
    created,
    records_file,
    sagemaker_tags,
)
from tests.helpers.moto_sagemaker import write_log_lines, write_transform_output

#: how long a held request waits for a second one (``_Server.hold``): far longer than a concurrent client needs to
#: send its second request, short enough that a sequential client fails the test quickly instead of hanging it
HOLD_S = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: guards the counters; requests held by ``hold`` wait on it for a second one to arrive
        self.lock = threading.Condition()
        #: hold each request until another is in flight beside it (once that has happened, none is held); a request
        #: held alone for HOLD_S answers 503, and so do the ones after it, so only a concurrent client passes
        self.hold = False
        self.gave_up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    """Like our server under Batch Transform: one answer line per record, no final newline (SageMaker adds one under
    AssembleWith=Line); a few magic texts make it misbehave."""

    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        with srv.lock:
            srv.bodies.append(body)
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
            srv.lock.notify_all()
            if srv.hold and not srv.gave_up:
                srv.gave_up = not srv.lock.wait_for(lambda: srv.max_in_flight >= 2, timeout=HOLD_S)
            alone = srv.hold and srv.gave_up
        try:
            if alone:
                return self._send(503, b"held alone: no second request arrived while this one was in flight")
            self._answer(body)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def _answer(self, body: bytes) -> None:
        texts = [json.loads(line).get("text", "") for line in body.splitlines()]
        if self.path != "/invocations" or self.headers["Content-Type"] != "application/jsonlines":
            return self._send(415, b"unsupported")
        if "fail" in texts:
            return self._send(500, b"worker died")
        if any(t.startswith("slow") for t in texts):
            time.sleep(0.2)
        answers = [{"error": "text is empty"} if not t else {"pred": t.upper()[:8]} for t in texts]
        if "short" in texts:
            answers.pop()
        ending = "\n\n" if "blank" in texts else "\n" if "trailing" in texts else ""
        self._send(200, ("\n".join(json.dumps(a) for a in answers) + ending).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/jsonlines")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def _output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_trailing_newline_in_an_answer_ends_its_last_line(server: _Server, tmp_path: Path) -> None:
    """Issue 23, defect 9: a server whose answer ends in a newline is read as SageMaker's Line assembly reads it."""
    src = _write(tmp_path / "in.jsonl", ["a", "trailing", "b"])
    summary = run_local_transform(src, tmp_path / "out.jsonl", server.url, max_payload_mb=1)
    assert summary.ok and not summary.failed and summary.output_lines == 3
    assert _output(tmp_path / "out.jsonl") == [{"pred": "A"}, {"pred": "TRAILING"}, {"pred": "B"}]


def test_a_blank_line_in_an_answer_is_a_missing_answer(server: _Server, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", ["a", "blank", "b"])
    summary = run_local_transform(src, tmp_path / "out.jsonl", server.url, max_payload_mb=1)
    assert not summary.ok and len(summary.failed) == 1
    assert summary.failed[0].reason == "answered 4 lines for 3 records"
    out = (tmp_path / "out.jsonl").read_text(encoding="utf-8").split("\n")
    assert out[-1] == "" and "" not in out[:-1] and len(out) == 4  # still one line per input line


def test_answers_are_assembled_in_input_order_under_concurrency(server: _Server, tmp_path: Path) -> None:
    """The server holds each request until a second one is in flight beside it: a client that sends one request
    at a time gets 503s (after HOLD_S) and fails here; one that sends up to ``concurrency`` at once passes."""
    big = "x" * (BYTES_PER_MB // 4)  # four of these make more than one 1 MB payload
    texts = ["slow first"] + [f"{i}{big}" for i in range(9)] + ["", "last"]
    src = _write(tmp_path / "in.jsonl", texts)
    server.hold = True
    summary = run_local_transform(src, tmp_path / "out.jsonl", server.url, max_payload_mb=1, concurrency=3)
    assert not server.gave_up, "no two requests were in flight at the same time"
    assert summary.ok and summary.records == summary.output_lines == len(texts)
    assert summary.requests == len(server.bodies) >= 3
    assert all(len(body) <= BYTES_PER_MB for body in server.bodies)
    assert 2 <= server.max_in_flight <= 3
    out = _output(tmp_path / "out.jsonl")
    assert out[0] == {"pred": "SLOW FIR"} and out[-1] == {"pred": "LAST"}
    assert [o["pred"][0] for o in out[1:10]] == [str(i) for i in range(9)]
    assert [(e.line, e.message) for e in summary.record_errors] == [(11, "text is empty")]
    assert summary.records_per_s > 0


def test_oversized_records_and_failed_requests_keep_the_output_aligned(server: _Server, tmp_path: Path) -> None:
    texts = ["a", "x" * (BYTES_PER_MB + 10), "b", "fail", "c"]
    src = _write(tmp_path / "in.jsonl", texts)
    summary = run_local_transform(src, tmp_path / "out.jsonl", server.url, max_payload_mb=1, concurrency=2)
    assert not summary.ok
    assert [o.line for o in summary.oversized] == [2]
    assert [(f.first_line, f.records) for f in summary.failed] == [(3, 3)]
    assert len(server.bodies) == 2  # the big record was never sent
    out = _output(tmp_path / "out.jsonl")
    assert len(out) == len(texts) and out[0] == {"pred": "A"}
    assert "not sent" in out[1]["error"]
    assert all(o["error"].startswith("request failed: HTTP 500") for o in out[2:])


def test_each_failure_kind_is_summarised(server: _Server, tmp_path: Path) -> None:
    filler = "y" * (BYTES_PER_MB * 6 // 10)  # two fillers never share a 1 MB payload
    src = _write(tmp_path / "in.jsonl", [filler, "fail", filler, "short", filler])
    summary = run_local_transform(src, tmp_path / "out.jsonl", server.url, max_payload_mb=1, concurrency=2)
    assert sorted((f.first_line, f.reason) for f in summary.failed) == [
        (1, "HTTP 500: worker died"), (3, "answered 1 lines for 2 records")]
    assert len(_output(tmp_path / "out.jsonl")) == 5
    assert "FAILED request for lines 1-2: HTTP 500" in summary.describe()


def _closed_port() -> int:
    with socket.socket() as sock:  # a loopback port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_named_and_no_output_is_written(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url, src, out = f"http://127.0.0.1:{_closed_port()}", _write(tmp_path / "in.jsonl", ["a", "b"]), tmp_path / "o"
    with pytest.raises(ServerUnreachable, match=f"no server answers at {url} \\(ConnectionError\\)"):
        run_local_transform(src, out, url, timeout_s=2)
    assert not out.exists()
    assert main(["transform", "--local", "--url", url, "--input", str(src), "--output", str(out)], env={}) == 1
    printed, err = capsys.readouterr()
    assert f"error: no server answers at {url}" in err and printed == "" and not out.exists()


def test_a_missing_input_or_output_folder_exits_2_before_anything_is_sent(server: _Server, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    argv = ["transform", "--local", "--url", server.url, "--input", str(missing), "--output", str(tmp_path / "o")]
    assert main(argv, env={}) == 2
    assert f"error: input='{missing}': expected an existing file" in capsys.readouterr().err
    good = _write(tmp_path / "good.jsonl", ["a"])
    nowhere = tmp_path / "no-such-folder" / "out.jsonl"
    assert main(["transform", "--local", "--url", server.url, "--input", str(good), "--output", str(nowhere)],
                env={}) == 2
    err = capsys.readouterr().err
    assert f"output='{nowhere}': expected a file in an existing folder ({nowhere.parent} does not exist)" in err
    assert server.bodies == [] and "Traceback" not in err


def test_command_line_local_transform_exits_non_zero_on_failure(server: _Server, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good.jsonl", ["a", "b"])
    assert main(["transform", "--local", "--url", server.url, "--input", str(good),
                 "--output", str(tmp_path / "good.out")], env={}) == 0
    bad = _write(tmp_path / "bad.jsonl", ["a", "fail"])
    assert main(["transform", "--local", "--url", server.url, "--input", str(bad),
                 "--output", str(tmp_path / "bad.out")], env={}) == 1
    assert "FAILED request for lines 1-2: HTTP 500" in capsys.readouterr().out


def test_urls_and_limits_are_validated() -> None:
    assert invocations_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/invocations"
    assert invocations_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/invocations"
    assert invocations_url("http://host/custom") == "http://host/custom"
    with pytest.raises(SettingError, match="url"):
        invocations_url("127.0.0.1:8080")
    with pytest.raises(SettingError, match="max_payload_mb=0"):
        run_local_transform("unused", "unused", max_payload_mb=0)


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
def test_transform_from_a_training_job_checks_its_input_before_creating_a_model(empty_account: Clients, capsys,
                                                                                 tmp_path: Path) -> None:
    """Issue 12, defect 3: everything is checked before anything is created."""
    create_bucket(empty_account)
    status, _, err = cli(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz",
                         "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "out"))
    assert status == 2 and "input=" in err and not created(empty_account)
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, _, err = cli(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--input",
                         str(records), "--output", str(tmp_path / "out"), "--instance-type", "g4dn.xlarge")
    assert status == 2 and "instance_type='g4dn.xlarge'" in err and not created(empty_account)


def test_a_transform_that_wrote_nothing_says_so(empty_account: Clients, capsys, tmp_path: Path) -> None:
    """Issue 12, defect 10: invoke: records answered with an error make the command fail, unless allowed."""
    create_bucket(empty_account)
    empty_account.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=b"stand-in")
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, _, err = cli(capsys, "transform", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--input",
                         str(records), "--output", str(tmp_path / "out"))
    assert status == 1 and "is Completed but wrote no s3://" in err and "/records.jsonl.out" in err


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
def test_transform_refuses_a_missing_archive_or_model_before_uploading(account: Clients, capsys,
                                                                       tmp_path: Path) -> None:
    """Issue 23, defects 1 and 2: a model archive that does not exist."""
    records = records_file(tmp_path)
    status, _, err = cli(capsys, "transform", "--model-data", MISSING, "--input", str(records), "--output",
                         str(tmp_path / "out"), "--instance-type", "ml.m5.xlarge")
    assert status == 2 and f"model_data='{MISSING}': expected an existing archive" in err
    status, _, err = cli(capsys, "transform", "--model", "smtx-model-none", "--input", str(records), "--output",
                         str(tmp_path / "out"), "--instance-type", "ml.m5.xlarge")
    assert status == 2 and "model='smtx-model-none': expected an existing SageMaker model" in err
    assert created(account) == {}


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
def test_transform_no_wait_then_follow_and_stop(simulated_account: Clients, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"text": "a"}\n', encoding="utf-8")
    status, out, _ = cli(capsys, "transform", "--model-data", MODEL_DATA, "--instance-type", "ml.m5.xlarge",
                         "--input", str(records), "--output", str(tmp_path / "nowhere" / "out"), "--no-wait",
                          "--tag", "team=nlp", "--kms-key", KEY)
    assert status == 0 and "follow with: python -m launcher follow-transform smtx-transform-" in out, out
    job = re.search(r"transform job (\S+):", out).group(1)  # type: ignore[union-attr]
    described = simulated_account.sagemaker.describe_transform_job(TransformJobName=job)
    assert described["TransformOutput"]["KmsKeyId"] == KEY
    assert sagemaker_tags(simulated_account, described["TransformJobArn"])["smtx:command"] == "transform"
    write_log_lines(simulated_account.logs, TRANSFORM_LOG_GROUP, f"{job}/i-0abc-1700000000", ["loaded model", "200 OK"])
    status, out, _ = cli(capsys, "follow-transform", job)
    assert status == 0 and "loaded model\n200 OK" in out and f"transform job {job}: Completed" in out
    assert cli(capsys, "logs", "--transform-job", job)[1] == "loaded model\n200 OK\n"
    status, out, _ = cli(capsys, "stop-transform", job)
    assert status == 0 and f"asked {job} to stop" in out
    status, _, err = cli(capsys, "follow-transform", job)
    assert status == 1 and f"transform job {job} ended Stopped" in err


# the Python API against moto as it is (each test plays SageMaker's part itself) --------------------------------------
def test_batch_transform_uploads_runs_downloads_and_checks_each_line(model_account: Clients, tmp_path: Path) -> None:
    create_model(model_account, "smtx-model-1", SERVING, {"ModelDataUrl": MODEL_DATA})
    write_transform_output(REGION)
    source = tmp_path / "records.jsonl"
    source.write_text('{"text": "a"}\n{"txt": "typo"}\n{"text": "c"}\n', encoding="utf-8")
    report = run_transform(model_account, source, f"s3://{BUCKET}/transform", TransformConfig("smtx-model-1"),
                           tmp_path / "out" / "records.jsonl.out", INSTANT, emit=lambda _: None)
    assert report.ok and report.check.output_lines == 3
    assert [(e.line, e.message) for e in report.check.errors] == [(2, "record has no 'text' string")]
    assert report.input_uri.endswith(f"{report.job_name}/input/records.jsonl")
    job = model_account.sagemaker.describe_transform_job(TransformJobName=report.job_name)
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 6
    assert job["TransformInput"]["SplitType"] == "Line" and job["TransformOutput"]["AssembleWith"] == "Line"
    assert job["TransformInput"]["ContentType"] == job["TransformOutput"]["Accept"] == "application/jsonlines"


def test_a_failed_transform_raises_with_its_reason(model_account: Clients) -> None:
    create_model(model_account, "smtx-model-2", SERVING, {"ModelDataUrl": MODEL_DATA})
    name = start_transform_job(model_account, "smtx-transform-x", TransformConfig("smtx-model-2"),
                               f"s3://{BUCKET}/in/x.jsonl", f"s3://{BUCKET}/out/")
    job = backend().transform_jobs[name]
    job.transform_job_status, job.failure_reason = "Failed", "ClientError: See job logs for more information"
    with pytest.raises(JobFailed, match="ended Failed: ClientError"):
        wait_for_transform(model_account, name, INSTANT, lambda _: None)
