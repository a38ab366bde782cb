"""The multi-model gate: SageMaker's port in front of TorchServe, refusing any model from outside the models root.

TorchServe's ``allowed_urls`` restricts URLs only: ``POST /models`` with a plain directory path loads whatever
directory it names, and loading starts a worker that imports that directory's handler -- code from anywhere on the
disk runs before any check of ours inside the handler could refuse it. So in multi-model mode TorchServe listens
on loopback only, and this gate owns the SageMaker port:

- ``POST /models`` is checked here, before TorchServe sees it: only the fields SageMaker sends (``model_name``,
  ``url``) and TorchServe's numeric settings; ``url`` a directory (or ``.mar``) whose real path -- symlinks and
  ``..`` resolved -- lies under the models root; no URL scheme but ``file://`` to such a path. TorchServe gets a
  freshly written JSON body naming the resolved path, so what it parses is exactly what was checked (it reads
  either the JSON body or the query string, depending on the content type; the gate forwards only the body).
  The body also carries the environment's batch size, batch delay and workers (``GateConfig.registration_defaults``)
  where the registration names none, so a model SageMaker loads later is served like the startup model.
- Only the routes a multi-model endpoint uses are forwarded (ping, list/describe/register/unregister/scale a
  model, invoke); anything else -- workflows, the API description -- is 404 here.
- Everything else passes through unchanged: header names keep their case (TorchServe's handler API is
  case-sensitive), bodies and status codes are forwarded as they are.

Single-model and Batch Transform serving have no gate (no route loads a model there: the model API is off).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger("entrypoints.gate")

#: fields of a registration the gate forwards: what SageMaker sends, and TorchServe's numeric settings
NUMERIC_FIELDS = ("batch_size", "max_batch_delay", "initial_workers", "response_timeout", "startup_timeout")
ALLOWED_FIELDS = ("model_name", "url", "synchronous", *NUMERIC_FIELDS)
#: (method, path pattern) a multi-model endpoint uses; TorchServe answers them, the gate only lets them through
ROUTES = (
    ("GET", r"/ping"),
    ("POST", r"/ping"),
    ("GET", r"/models"),
    ("POST", r"/models"),
    ("GET", r"/models/[^/]+(/[^/]+)?"),
    ("DELETE", r"/models/[^/]+(/[^/]+)?"),
    ("PUT", r"/models/[^/]+(/[^/]+)?"),
    ("POST", r"/models/[^/]+/invoke"),
    ("POST", r"/invocations"),
    ("POST", r"/predictions/[^/]+(/[^/]+)?"),
)
_ROUTES = tuple((method, re.compile(pattern)) for method, pattern in ROUTES)
#: headers that describe one connection, not the request: never forwarded either way
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length"))


class Refused(Exception):
    """A request the gate answers itself, with TorchServe's error shape."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestException") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


def allowed_route(method: str, path: str) -> bool:
    return any(m == method and rx.fullmatch(path) for m, rx in _ROUTES)


def model_path(url: str, models_root: Path) -> Path:
    """The real path TorchServe may load for a registration's ``url``; ``Refused`` for anything else.

    A relative path is taken under the models root. The returned path has symlinks and ``..`` resolved, so the
    check and the load see the same directory."""
    if not url.strip():
        raise Refused(400, "url is empty: name a model directory under the models root")
    if any(ord(c) < 32 for c in url):
        raise Refused(400, "url contains control characters")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise Refused(400, f"url {url!r}: file:// URLs must name a local path")
        url = unquote(parts.path)
    elif parts.scheme or "://" in url:
        raise Refused(400, f"url {url!r}: models load only from directories under {models_root}, not from URLs")
    root = models_root.resolve()
    path = Path(url) if os.path.isabs(url) else models_root / url
    real = Path(os.path.realpath(path))
    if real == root or not real.is_relative_to(root):
        raise Refused(400, f"url {url!r} is outside {models_root}: models load only from under it")
    if not (real.is_dir() or (real.is_file() and real.suffix == ".mar")):
        raise Refused(404, f"no model directory at {url!r}", "ModelNotFoundException")
    return real


def _registration_fields(content_type: str, query: str, body: bytes) -> dict[str, Any]:
    """The registration as TorchServe would read it: the JSON body for application/json, else the query."""
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(400, f"the registration body is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise Refused(400, "the registration body must be a JSON object")
        return parsed
    pairs = parse_qsl(query, keep_blank_values=True)
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key in fields:
            raise Refused(400, f"parameter {key!r} is given more than once")
        fields[key] = value
    return fields


def archive_batch_delay(model_dir: Path) -> int | None:
    """``maxBatchDelay`` of the archive's model-config.yaml, or None.

    TorchServe 0.12 reads it only for a registration by query string: a JSON body without ``max_batch_delay``
    leaves the model at -10000 ms (RegisterModelRequest's no-argument constructor), which batches at most one
    queued request. The gate forwards a JSON body, so it names the archive's delay itself."""
    import yaml  # only here: the gate's other paths need no YAML

    try:
        settings = yaml.safe_load((model_dir / "model-config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None  # no file, or one TorchServe itself will report
    value = settings.get("maxBatchDelay") if isinstance(settings, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def registration(content_type: str, query: str, body: bytes, models_root: Path,
                 defaults: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The checked registration to forward (as a JSON body): known fields only, ``url`` resolved, each of
    ``defaults`` (numeric fields) where the registration does not name it, then the archive's batch delay where
    neither does (see ``archive_batch_delay``)."""
    fields = _registration_fields(content_type, query, body)
    unknown = sorted(set(fields) - set(ALLOWED_FIELDS))
    if unknown:
        raise Refused(400, f"registration fields {unknown} are not accepted here; allowed: {list(ALLOWED_FIELDS)}")
    fields = {**(defaults or {}), **fields}
    name, url = fields.get("model_name"), fields.get("url")
    if not isinstance(url, str):
        raise Refused(400, "url is missing or not a string")
    if name is not None and not isinstance(name, str):
        raise Refused(400, "model_name must be a string")
    real = model_path(url, models_root)
    checked = dict(fields, url=str(real))
    if "max_batch_delay" not in checked and real.is_dir():
        delay = archive_batch_delay(real)
        if delay is not None:
            checked["max_batch_delay"] = delay
    for key in NUMERIC_FIELDS:
        if key in checked:
            value = checked[key]
            if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise Refused(400, f"{key} must be an integer, got {checked[key]!r}")
            checked[key] = value
    if "synchronous" in checked:
        value = checked["synchronous"]
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise Refused(400, f"synchronous must be true or false, got {checked['synchronous']!r}")
        checked["synchronous"] = value
    return checked


@dataclass(frozen=True)
class GateConfig:
    models_root: Path
    upstream_host: str
    upstream_port: int
    #: how long to wait for TorchServe's answer (its own response timeout, plus a margin)
    upstream_timeout_s: float
    max_request_bytes: int
    #: numeric registration fields every ``POST /models`` gets unless it names its own (``entrypoints.serve``:
    #: the environment's batch size, batch delay and workers, as the startup model gets them)
    registration_defaults: Mapping[str, int] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smtx-gate"
    #: an idle keep-alive connection is closed after this long
    timeout = 120

    server: "Gate"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base class's name
        pass  # one line per request would flood the log; refusals are logged where they happen

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]], reason: str | None = None) -> None:
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, refused: Refused) -> None:
        body = json.dumps({"code": refused.status, "type": refused.kind, "message": str(refused)}).encode()
        self._answer(refused.status, body, [("Content-Type", "application/json")])

    def _body(self) -> bytes:
        limit = self.server.config.max_request_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    length = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise Refused(400, "malformed chunked request body") from None
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > limit:
                    self.close_connection = True
                    raise Refused(413, f"request body over {limit} bytes", "RequestTooLarge")
                chunks.append(self.rfile.read(length))
                self.rfile.readline(1024)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.close_connection = True
            raise Refused(400, f"Content-Length {raw!r} is not a number") from None
        if length > limit:
            self.close_connection = True
            raise Refused(413, f"request body over {limit} bytes", "RequestTooLarge")
        return self.rfile.read(length)

    def _handle(self) -> None:
        target = urlsplit(self.path)
        try:
            if not allowed_route(self.command, target.path):
                raise Refused(404, f"{self.command} {target.path} is not served by a multi-model endpoint",
                              "ResourceNotFoundException")
            body = self._body()
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            path = self.path
            if self.command == "POST" and target.path == "/models":
                fields = registration(self.headers.get("Content-Type", ""), target.query, body,
                                      self.server.config.models_root, self.server.config.registration_defaults)
                body = json.dumps(fields).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
                headers.append(("Content-Type", "application/json"))
                path = "/models"
        except Refused as refused:
            if self.command == "POST" and target.path == "/models":
                log.warning("refused a model registration: %s", refused)
            self._refuse(refused)
            return
        try:
            status, reason, answer_headers, answer = self.server.forward(self.command, path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            log.error("TorchServe did not answer %s %s: %s", self.command, target.path, exc)
            self._refuse(Refused(502, "the model server did not answer", "BadGateway"))
            return
        self._answer(status, answer, answer_headers, reason)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle  # noqa: N815 -- http.server's names


class Gate(ThreadingHTTPServer):
    """The gate's HTTP server: one thread per client connection, one kept-alive upstream connection each."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: GateConfig) -> None:
        super().__init__(address, _Handler)
        self.config = config
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.config.upstream_host, self.config.upstream_port,
                                              timeout=self.config.upstream_timeout_s)
            self._local.conn = conn
        return conn

    def forward(self, method: str, path: str, headers: list[tuple[str, str]],
                body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One request to TorchServe over this thread's kept-alive connection; a stale one is replaced once."""
        for attempt in (0, 1):
            reused = getattr(self._local, "conn", None) is not None and attempt == 0
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                if body or method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                answer = resp.read()
                return resp.status, resp.reason, resp.getheaders(), answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if not reused:  # a fresh connection failed: TorchServe itself is not answering
                    raise
            except BaseException:
                conn.close()
                self._local.conn = None
                raise
        raise ConnectionError("unreachable")  # pragma: no cover -- the loop returns or raises

    def start(self) -> "Gate":
        self._thread = threading.Thread(target=self.serve_forever, name="gate", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
