"""invoke: splitting a jsonlines file into payloads, checking assembled output, the client-side codecs, and
invocations against moto (both content types, records answered with an error, broken files)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemakerruntime.models import sagemakerruntime_backends

from launcher.aws import Clients
from launcher.cli import main
from launcher.content_types import CODECS, codec
from launcher.endpoints.invoke import invoke, read_records
from launcher.errors import ResponseError, SettingError
from launcher.jobs.batches import Batch, Oversized, check_output, read_lines, split_batches
from tasks.serving_contract import JSON, JSONLINES
from tests.helpers.launcher_account import ENV, REGION, cli


def test_payloads_never_exceed_the_limit_and_keep_input_order() -> None:
    records = [b"a" * 9, b"b" * 9, b"c" * 9, b"d" * 19, b"e" * 4]  # 10, 10, 10, 20, 5 bytes with newlines
    units = list(split_batches(records, 20))
    assert [(u.first_line, u.records) for u in units if isinstance(u, Batch)] == [
        (1, (b"a" * 9, b"b" * 9)), (3, (b"c" * 9,)), (4, (b"d" * 19,)), (5, (b"e" * 4,))]
    assert all(len(u.payload) <= 20 for u in units if isinstance(u, Batch))
    assert [u.index for u in units] == list(range(len(units)))


def test_an_oversized_record_is_reported_in_place_and_never_sent() -> None:
    units = list(split_batches([b"ok", b"x" * 50, b"ok2"], 10))
    assert isinstance(units[1], Oversized) and units[1].line == 2 and units[1].size == 51
    assert [u.records for u in units if isinstance(u, Batch)] == [(b"ok",), (b"ok2",)]
    assert "error" in json.loads(units[1].error_line())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
       st.integers(min_value=1, max_value=64))
def test_splitting_covers_every_record_exactly_once(records: list[bytes], limit: int) -> None:
    units = list(split_batches(records, limit))
    seen: list[bytes] = []
    for unit in units:
        if isinstance(unit, Batch):
            assert len(unit.payload) <= limit
            seen.extend(unit.records)
        else:
            assert unit.size > limit
            seen.append(records[unit.line - 1])
    assert seen == records


def test_read_records_handles_final_newline_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "a"}\r\n\n{"text": "b"}\n')
    assert read_lines(path) == [b'{"text": "a"}', b"", b'{"text": "b"}']


def test_output_check_counts_lines_and_reports_error_objects() -> None:
    output = [b'{"pred": "x"}', b'{"error": "text is empty"}', b"not json", b'{"pred": "y"}']
    check = check_output(4, output)
    assert check.aligned
    assert [(e.line, e.message) for e in check.errors] == [(2, "text is empty"), (3, "not JSON (Expecting value)")]
    assert "2 records answered an error" in check.describe()
    assert not check_output(5, output).aligned and "MISMATCH" in check_output(5, output).describe()


def test_codecs_follow_our_content_type_contract() -> None:
    records = [{"text": "é"}, {"text": "b"}]
    assert json.loads(CODECS[JSON].encode(records)) == {"data": records}
    assert CODECS[JSONLINES].encode(records).decode("utf-8").splitlines() == [json.dumps(r, ensure_ascii=False)
                                                                               for r in records]
    assert codec("json").decode(b'{"predictions": [1, 2]}') == [1, 2]
    assert codec("jsonlines").decode(b'{"pred": 1}\n{"error": "bad"}\n') == [{"pred": 1}, {"error": "bad"}]
    with pytest.raises(ResponseError, match="predictions"):
        codec("json").decode(b'{"answer": 1}')
    with pytest.raises(SettingError, match="content_type='text/csv'"):
        codec("text/csv")


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
#: moto's own API for queueing invoke_endpoint answers, intercepted in-process by mock_aws
MOTO_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


def test_a_broken_jsonlines_line_is_reported_with_its_own_number(tmp_path: Path, capsys) -> None:
    """Issue 12, defect 5: jsonlines errors name their line."""
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken"\n\n[1]\n', encoding="utf-8")
    with pytest.raises(Exception, match=rf"file='{path}:2': expected one JSON object per line \(Expecting"):
        read_records(path)
    path.write_text('{"text": "fine"}\n\n[1]\n', encoding="utf-8")
    status = main(["invoke", "ep", "--file", str(path)], env=ENV)
    assert status == 2 and f"{path}:3=[1]: expected a JSON object" in capsys.readouterr().err


def _queue(*bodies: str) -> None:
    results = [{"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic",
                "CustomAttributes": ""} for body in bodies]
    requests.post(MOTO_RESULTS, json={"region": REGION, "results": results}, timeout=10).raise_for_status()


def test_invoke_exits_1_when_a_record_is_answered_with_an_error(empty_account: Clients, capsys) -> None:
    """Issue 12, defect 10: invoke: records answered with an error make the command fail, unless allowed."""
    answer = json.dumps({"predictions": [{"pred": "positive"}, {"error": "text is empty"}]})
    _queue(answer, answer)
    status, out, err = cli(capsys, "invoke", "smtx-ep-x", "--text", "good", "--text", " ")
    assert status == 1 and out.splitlines() == ['{"pred": "positive"}', '{"error": "text is empty"}']
    assert "1 of 2 records were answered with an error (records 2); pass --allow-errors" in err
    status, out, _ = cli(capsys, "invoke", "smtx-ep-x", "--text", "good", "--text", "  ", "--allow-errors")
    assert status == 0 and len(out.splitlines()) == 2


# the Python API against moto as it is (each test plays SageMaker's part itself) --------------------------------------
def test_invoke_encodes_both_content_types_and_checks_the_answer(model_account: Clients, tmp_path: Path) -> None:
    queue = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION].results_queue
    queue.append((json.dumps({"predictions": [{"pred": "a"}, {"pred": "b"}]}), "application/json", "AllTraffic", ""))
    queue.append(('{"pred": "a"}\n{"error": "text is empty"}\n', "application/jsonlines", "AllTraffic", ""))
    queue.append((json.dumps({"predictions": [{"pred": "a"}]}), "application/json", "AllTraffic", ""))
    records = [{"text": "one"}, {"text": "two"}]
    assert invoke(model_account, "ep", records, "json") == [{"pred": "a"}, {"pred": "b"}]
    path = tmp_path / "records.jsonl"
    path.write_text('{"text": "one"}\n{"text": ""}\n', encoding="utf-8")
    assert invoke(model_account, "ep", read_records(path), "jsonlines") == [{"pred": "a"}, {"error": "text is empty"}]
    with pytest.raises(ResponseError, match="1 predictions for 2 records"):
        invoke(model_account, "ep", [{"text": "x"}, {"text": "y"}], "json")
