"""The multi-model gate (entrypoints/gate.py): what it lets through to TorchServe, and how it forwards.

The checks are pure functions, tested here directly; the forwarding is tested against a small recording HTTP
server standing in for TorchServe (the real TorchServe behind the real gate is tested in
tests/server/test_security.py and tests/server/test_serve_contract.py, multi-model).
"""
from __future__ import annotations

import http.client
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from entrypoints.gate import Gate, GateConfig, Refused, allowed_route, model_path, registration
from entrypoints.torchserve import free_port


@pytest.fixture
def root(tmp_path) -> Path:
    models = tmp_path / "ml" / "models"
    (models / "a" / "model").mkdir(parents=True)
    (models / "b.mar").write_bytes(b"PK")
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", models / "link")
    os.symlink(models / "a", models / "inner-link")
    return models


# -- the path check -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, expected", [
    ("a/model", "a/model"), ("{root}/a/model", "a/model"), ("file://{root}/a/model", "a/model"),
    ("file://localhost{root}/a/model", "a/model"), ("{root}/inner-link/model", "a/model"),
    ("{root}/a/../a/model", "a/model"), ("b.mar", "b.mar")])
def test_model_path_accepts_what_lies_under_the_root(root, url, expected):
    assert model_path(url.format(root=root), root) == (root / expected).resolve()


@pytest.mark.parametrize("url, status, words", [
    ("", 400, "empty"),
    ("   ", 400, "empty"),
    ("{root}", 400, "outside"),
    ("{root}/..", 400, "outside"),
    ("{root}/a/../../outside", 400, "outside"),
    ("../outside", 400, "outside"),
    ("{root}/link", 400, "outside"),
    ("/etc", 400, "outside"),
    ("{root}-evil/a", 400, "outside"),
    ("file://{root}/../outside", 400, "outside"),
    ("file://otherhost{root}/a/model", 400, "local path"),
    ("http://127.0.0.1/model.tar.gz", 400, "not from URLs"),
    ("https://example.com/a.mar", 400, "not from URLs"),
    ("s3://bucket/model.tar.gz", 400, "not from URLs"),
    ("{root}/a/model\n", 400, "control characters"),
    ("{root}/missing", 404, "no model directory"),
])
def test_model_path_refuses_everything_else(root, url, status, words):
    with pytest.raises(Refused) as caught:
        model_path(url.format(root=root), root)
    assert caught.value.status == status and words in str(caught.value)


# -- the registration ---------------------------------------------------------------------------------------------
def test_registration_forwards_known_fields_with_the_resolved_path(root):
    body = json.dumps({"model_name": "a", "url": f"{root}/a/../a/model", "initial_workers": 1}).encode()
    got = registration("application/json; charset=utf-8", "url=/etc&model_name=x", body, root)
    assert got == {"model_name": "a", "url": str((root / "a" / "model").resolve()), "initial_workers": 1}


def test_registration_gets_the_environment_settings_it_does_not_name(root):
    """Issue 23: a model SageMaker loads later gets the SAGEMAKER_TS_* settings; a registration's own field wins."""
    defaults = {"batch_size": 3, "max_batch_delay": 7, "initial_workers": 2}
    got = registration("application/json", "", json.dumps({"model_name": "a", "url": "a/model"}).encode(), root,
                       defaults)
    assert got == {"model_name": "a", "url": str((root / "a" / "model").resolve()), **defaults}
    got = registration("", "model_name=a&url=a/model&batch_size=5", b"", root, defaults)
    assert (got["batch_size"], got["max_batch_delay"], got["initial_workers"]) == (5, 7, 2)


def test_registration_names_the_archive_batch_delay_when_nothing_else_does(root):
    (root / "a" / "model" / "model-config.yaml").write_text("batchSize: 8\nmaxBatchDelay: 50\n")
    body = json.dumps({"model_name": "a", "url": "a/model"}).encode()
    assert registration("application/json", "", body, root)["max_batch_delay"] == 50
    assert registration("application/json", "", body, root, {"max_batch_delay": 7})["max_batch_delay"] == 7


def test_registration_by_query_string_is_checked_and_typed(root):
    got = registration("", f"model_name=a&url={root}/a/model&batch_size=4&synchronous=true", b"", root)
    assert got["batch_size"] == 4 and got["synchronous"] is True and got["url"] == str((root / "a/model").resolve())
    with pytest.raises(Refused, match="outside"):
        registration("application/x-www-form-urlencoded", "model_name=a&url=/etc", b"", root)


@pytest.mark.parametrize("ctype, query, body, words", [
    ("application/json", "", b'{"model_name": "a", "url": "a/model", "handler": "/tmp/x.py"}', "['handler']"),
    ("application/json", "", b'{"model_name": "a", "url": "a/model", "runtime": "python"}', "['runtime']"),
    ("application/json", "", b'["a/model"]', "JSON object"),
    ("application/json", "", b'{"url": ', "not valid JSON"),
    ("application/json", "", b'\xff', "not valid JSON"),
    ("application/json", "", b'{"model_name": "a"}', "url is missing"),
    ("application/json", "", b'{"model_name": "a", "url": 3}', "url is missing"),
    ("application/json", "", b'{"model_name": 3, "url": "a/model"}', "model_name"),
    ("application/json", "", b'{"model_name": "a", "url": "a/model", "batch_size": "many"}', "batch_size"),
    ("application/json", "", b'{"model_name": "a", "url": "a/model", "batch_size": true}', "batch_size"),
    ("application/json", "", b'{"model_name": "a", "url": "a/model", "synchronous": "yes"}', "synchronous"),
    ("", "model_name=a&url=a/model&url=/etc", b"", "more than once"),
    ("", "model_name=a&url=a/model&handler=x", b"", "['handler']"),
])
def test_registration_refuses_with_the_reason(root, ctype, query, body, words):
    with pytest.raises(Refused) as caught:
        registration(ctype, query, body, root)
    assert caught.value.status == 400 and words in str(caught.value)


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/ping", True), ("GET", "/models", True), ("POST", "/models", True), ("GET", "/models/a", True),
    ("GET", "/models/a/1.0", True), ("DELETE", "/models/a", True), ("POST", "/models/a/invoke", True),
    ("POST", "/invocations", True), ("POST", "/predictions/a", True),
    ("POST", "/workflows", False), ("GET", "/api-description", False), ("OPTIONS", "/", False),
    ("POST", "/models/a", False), ("DELETE", "/models", False), ("GET", "/models/a/b/c", False),
    ("POST", "/models/a/invoke/x", False), ("GET", "/metrics", False),
])
def test_only_the_routes_of_a_multi_model_endpoint_pass(method, path, allowed):
    assert allowed_route(method, path) is allowed


# -- forwarding, against a recording upstream -------------------------------------------------------------------------
class _Upstream(BaseHTTPRequestHandler):
    """Answers every request with what it received: method, path, headers (names as sent), body."""

    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *args) -> None:
        pass

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record = {"method": self.command, "path": self.path, "headers": list(self.headers.keys()),
                  "body": body.decode("latin-1")}
        type(self).seen.append(record)
        answer = json.dumps(record).encode()
        self.send_response(207, "Echoed")
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = do_PUT = _echo  # noqa: N815 -- http.server's method names


@pytest.fixture
def gate(root):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    front = Gate(("127.0.0.1", 0), GateConfig(models_root=root, upstream_host="127.0.0.1",
                                              upstream_port=upstream.server_address[1], upstream_timeout_s=10,
                                              max_request_bytes=1000)).start()
    _Upstream.seen = []
    try:
        yield {"port": front.server_address[1], "upstream": upstream, "front": front}
    finally:
        front.stop()
        upstream.shutdown()
        upstream.server_close()


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             conn: http.client.HTTPConnection | None = None):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_gate_forwards_status_headers_and_body_unchanged(gate):
    status, headers, body = _request(gate["port"], "POST", "/models/a/invoke?x=1", b'{"text": "hi"}',
                                     {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "a=1",
                                      "accept": "application/jsonlines"})
    seen = json.loads(body)
    assert status == 207 and headers["X-Upstream"] == "yes"
    assert seen["path"] == "/models/a/invoke?x=1" and seen["body"] == '{"text": "hi"}'
    # names keep their case: TorchServe's context.get_request_header is case-sensitive
    assert {"Content-Type", "X-Amzn-SageMaker-Custom-Attributes", "accept"} <= set(seen["headers"])


def test_gate_forwards_a_checked_registration_as_a_json_body(gate, root):
    status, _, body = _request(gate["port"], "POST", f"/models?model_name=a&url={root}/a/../a/model&batch_size=2")
    seen = json.loads(body)
    assert status == 207 and seen["path"] == "/models"
    assert json.loads(seen["body"]) == {"model_name": "a", "url": str((root / "a/model").resolve()), "batch_size": 2}


def test_gate_refuses_without_reaching_the_upstream(gate, root):
    status, headers, body = _request(gate["port"], "POST", "/models", json.dumps(
        {"model_name": "x", "url": str(root.parent.parent / "outside")}).encode(), {"Content-Type": "application/json"})
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["code"] == 400 and "outside" in json.loads(body)["message"]
    assert _request(gate["port"], "POST", "/workflows?url=x")[0] == 404
    assert _request(gate["port"], "POST", "/models/a/invoke", b"x" * 1001)[0] == 413
    assert _Upstream.seen == []


def test_gate_reads_chunked_bodies_and_keeps_connections_alive(gate):
    conn = http.client.HTTPConnection("127.0.0.1", gate["port"], timeout=10)
    for _ in range(3):
        conn.request("POST", "/invocations", body=iter([b'{"text": ', b'"chunked"}']),
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 207 and json.loads(resp.read())["body"] == '{"text": "chunked"}'
    conn.close()
    assert len(_Upstream.seen) == 3


def test_gate_answers_502_while_the_upstream_is_down_and_recovers(root):
    port = free_port()
    front = Gate(("127.0.0.1", 0), GateConfig(models_root=root, upstream_host="127.0.0.1", upstream_port=port,
                                              upstream_timeout_s=10, max_request_bytes=1000)).start()
    conn = http.client.HTTPConnection("127.0.0.1", front.server_address[1], timeout=10)
    try:
        status, _, body = _request(0, "GET", "/ping", conn=conn)
        assert status == 502 and json.loads(body)["type"] == "BadGateway"
        upstream = ThreadingHTTPServer(("127.0.0.1", port), _Upstream)  # TorchServe comes up: the same client
        threading.Thread(target=upstream.serve_forever, daemon=True).start()  # connection works again
        try:
            assert _request(0, "GET", "/ping", conn=conn)[0] == 207
        finally:
            upstream.shutdown()
            upstream.server_close()
    finally:
        front.stop()


class _Closing(_Upstream):
    """Closes every connection after one answer without saying so: the gate's kept-alive connection goes stale."""

    def _echo(self) -> None:
        super()._echo()
        self.close_connection = True

    do_GET = do_POST = _echo  # noqa: N815 -- http.server's method names


def test_gate_replaces_a_stale_upstream_connection(root):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    front = Gate(("127.0.0.1", 0), GateConfig(models_root=root, upstream_host="127.0.0.1",
                                              upstream_port=upstream.server_address[1], upstream_timeout_s=10,
                                              max_request_bytes=1000)).start()
    conn = http.client.HTTPConnection("127.0.0.1", front.server_address[1], timeout=10)
    try:
        assert [_request(0, "POST", "/invocations", b"{}", conn=conn)[0] for _ in range(4)] == [207] * 4
    finally:
        front.stop()
        upstream.shutdown()
        upstream.server_close()


# -- the second line: the handler's own check, for a registration that reached TorchServe anyway ----------------------
def test_the_handler_refuses_a_model_directory_outside_the_root(root):
    from handlers.ts_handler import check_allowed

    check_allowed(str(root / "a" / "model"), str(root))
    check_allowed(str(root / "anything"), None)  # single-model mode: no root
    for outside in (root.parent.parent / "outside", root / "link", root / ".." / "models-evil"):
        with pytest.raises(PermissionError, match="outside"):
            check_allowed(str(outside), str(root))
