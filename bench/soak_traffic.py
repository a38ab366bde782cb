"""The soak's traffic: a mix of valid and invalid requests, keep-alive clients that send them, and the judge.

Every answer is checked: a valid request must get 200 with one output per record, an invalid one its own 4xx.
What the clients saw is added up in one ``Tally`` shared under a lock.
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field

#: the name the soak's server registers its model under
MODEL = "model"
REQUEST_TIMEOUT_S = 60.0
JSON, JSONL = "application/json", "application/jsonlines"


@dataclass(frozen=True)
class Planned:
    """One request to send and what it must get."""

    kind: str
    body: bytes
    headers: dict[str, str]
    status: int
    records: int = 0  # outputs a 200 must hold

    @property
    def valid(self) -> bool:
        return self.status == 200


def request_texts() -> list[str]:
    """The texts valid requests draw from (the same ones every run)."""
    from bench.texts import corpus

    return corpus(400, seed=7)


def plan(rng: random.Random, texts: list[str], max_text_chars: int) -> Planned:
    """A request drawn from the mix: 80 % valid (JSON or jsonlines, 1-8 records), 20 % invalid."""
    roll = rng.random()
    picked = [rng.choice(texts) for _ in range(rng.randint(1, 8))]
    if roll < 0.4:
        return Planned("json", json.dumps({"data": [{"text": t} for t in picked]}).encode(), {"Content-Type": JSON},
                       200, len(picked))
    if roll < 0.8:
        body = "".join(json.dumps({"text": t}) + "\n" for t in picked).encode()
        return Planned("jsonlines", body, {"Content-Type": JSONL, "Accept": rng.choice([JSONL, JSON, "*/*"])},
                       200, len(picked))
    invalid = [
        Planned("empty text", b'{"text": ""}', {"Content-Type": JSON}, 400),
        Planned("not json", b'{"text": "unterminated', {"Content-Type": JSON}, 400),
        Planned("text missing", b'{"data": [{"txt": "a"}]}', {"Content-Type": JSON}, 400),
        Planned("blank line", b'{"text": "a"}\n\n{"text": "b"}\n', {"Content-Type": JSONL}, 400),
        Planned("csv", b"a,b\n", {"Content-Type": "text/csv"}, 415),
        Planned("accept png", b'{"text": "a"}', {"Content-Type": JSON, "Accept": "image/png"}, 406),
        Planned("text too long", json.dumps({"text": "a" * (max_text_chars + 1)}).encode(), {"Content-Type": JSON},
                413),
    ]
    return rng.choice(invalid)


@dataclass
class Tally:
    """What the clients saw (shared; updated under a lock)."""

    sent: int = 0
    valid: int = 0
    invalid: int = 0
    failed_valid: int = 0
    unexpected_invalid: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def _outputs(body: bytes, content_type: str) -> int:
    if content_type.startswith(JSONL):
        return len(body.decode("utf-8").splitlines())
    return len(json.loads(body)["predictions"])


def _judge(request: Planned, status: int, content_type: str, body: bytes) -> str | None:
    """None when the answer is right, else why not."""
    if status != request.status:
        return f"{request.kind}: status {status}, expected {request.status}: {body[:120]!r}"
    if request.valid:
        try:
            got = _outputs(body, content_type)
        except (ValueError, KeyError) as exc:
            return f"{request.kind}: unreadable answer ({exc})"
        if got != request.records:
            return f"{request.kind}: {got} outputs for {request.records} records"
    return None


class Client(threading.Thread):
    """One keep-alive connection sending planned requests until the deadline or the shared request budget."""

    def __init__(self, index: int, port: int, deadline: float, budget: "Budget", tally: Tally, lock: threading.Lock,
                 texts: list[str], max_text_chars: int) -> None:
        super().__init__(daemon=True, name=f"soak-client-{index}")
        self.rng = random.Random(index)
        self.port, self.deadline, self.budget, self.tally, self.lock = port, deadline, budget, tally, lock
        self.texts, self.max_text_chars = texts, max_text_chars
        self.conn: http.client.HTTPConnection | None = None

    def _send(self, request: Planned) -> tuple[int, str, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed is reopened once
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                self.conn.request("POST", f"/predictions/{MODEL}", body=request.body, headers=request.headers)
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, resp.getheader("Content-Type", ""), body
            except (ConnectionError, http.client.HTTPException, OSError):
                if self.conn is not None:  # None only where the server's "Connection: close" was just honoured
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        while time.monotonic() < self.deadline and self.budget.take():
            request = plan(self.rng, self.texts, self.max_text_chars)
            started = time.perf_counter()
            try:
                status, ctype, body = self._send(request)
                problem = _judge(request, status, ctype, body)
            except OSError as exc:
                problem = f"{request.kind}: {type(exc).__name__}: {exc}"
            self._record(request, problem, (time.perf_counter() - started) * 1000)
        if self.conn is not None:
            self.conn.close()

    def _record(self, request: Planned, problem: str | None, ms: float) -> None:
        with self.lock:
            t = self.tally
            t.sent += 1
            t.by_kind[request.kind] = t.by_kind.get(request.kind, 0) + 1
            if request.valid:
                t.valid += 1
                t.latencies_ms.append(ms)
                t.failed_valid += problem is not None
            else:
                t.invalid += 1
                t.unexpected_invalid += problem is not None
            if problem and len(t.examples) < 20:
                t.examples.append(problem)


class Budget:
    """At most ``limit`` requests in all (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.left, self.lock = limit, threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left is None:
                return True
            if self.left <= 0:
                return False
            self.left -= 1
            return True
