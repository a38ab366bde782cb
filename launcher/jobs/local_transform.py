"""Batch Transform on the laptop, against a running server (``/invocations``), split and assembled like SageMaker.

The input jsonlines file is cut into payloads of at most MaxPayloadInMB (a record larger than that is reported,
not sent) and answers are assembled as under ``AssembleWith=Line``: one line per record, a newline after each. A
body that ends with one newline is read as its lines, that newline ending the last one (as SageMaker's assembly
takes it); any other blank line is a missing answer, and the request fails. Payloads go out
with bounded concurrency, and answers are written back by line in input order. A failed request does not stop the
run: its records get ``{"error": ...}`` lines, so the output still has one line per input line, and the summary (and
the exit status of the command) says what failed.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from launcher.checks import writable_path
from launcher.errors import ServerUnreachable, require
from launcher.jobs.batches import BYTES_PER_MB, Batch, ErrorLine, Oversized, error_lines, read_lines, split_batches
from tasks.serving_contract import JSONLINES

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8080"
HEADERS = {"Content-Type": JSONLINES, "Accept": JSONLINES}
MAX_REPORTED = 20


@dataclass(frozen=True)
class BatchFailure:
    """A request that got no usable answer."""

    first_line: int
    records: int
    reason: str

    def error_lines(self) -> list[bytes]:
        """One error object per record of the batch, so the output stays aligned with the input."""
        line = json.dumps({"error": f"request failed: {self.reason}"}).encode("utf-8")
        return [line] * self.records


@dataclass
class TransformSummary:
    """What a local transform did."""

    input_path: Path
    output_path: Path
    records: int = 0
    requests: int = 0
    output_lines: int = 0
    seconds: float = 0.0
    failed: list[BatchFailure] = field(default_factory=list)
    oversized: list[Oversized] = field(default_factory=list)
    record_errors: list[ErrorLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every record was sent and every request answered one line per record."""
        return not self.failed and not self.oversized and self.output_lines == self.records

    @property
    def records_per_s(self) -> float:
        """Throughput over the whole run."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """A short report for people."""
        lines = [f"{self.records} records in {self.requests} requests, {self.seconds:.2f} s "
                 f"({self.records_per_s:.1f} records/s) -> {self.output_path} ({self.output_lines} lines)"]
        lines += [f"FAILED request for lines {f.first_line}-{f.first_line + f.records - 1}: {f.reason}"
                  for f in self.failed[:MAX_REPORTED]]
        lines += [f"NOT SENT line {o.line}: {o.size} bytes > {o.limit}" for o in self.oversized[:MAX_REPORTED]]
        lines.append(f"{len(self.record_errors)} records answered an error")
        lines += [f"  line {e.line}: {e.message}" for e in self.record_errors[:MAX_REPORTED]]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Answer:
    batch: Batch
    lines: list[bytes]
    failure: BatchFailure | None = None


def invocations_url(url: str) -> str:
    """``url`` itself, or ``url/invocations`` when it names only the server."""
    parts = urlsplit(url)
    require(parts.scheme in ("http", "https") and bool(parts.netloc), "url", url, "an http:// or https:// URL")
    return url.rstrip("/") + "/invocations" if parts.path in ("", "/") else url


def check_reachable(session: requests.Session, url: str, timeout_s: float) -> None:
    """Raise ServerUnreachable unless something answers HTTP at ``url``'s host (any status will do).

    Asked once before the run, so a server that is not there yields one clear error and no output file,
    rather than an output full of "request failed" lines and a records/s figure for nothing.
    """
    parts = urlsplit(url)
    ping = f"{parts.scheme}://{parts.netloc}/ping"
    try:
        session.get(ping, timeout=min(timeout_s, 10.0))
    except requests.RequestException as exc:
        raise ServerUnreachable(f"no server answers at {parts.scheme}://{parts.netloc} ({type(exc).__name__}); "
                                "start one (see README: Archive and serve locally) or pass --url") from None


def _send(session: requests.Session, url: str, batch: Batch, timeout_s: float) -> _Answer:
    def failed(reason: str) -> _Answer:
        failure = BatchFailure(batch.first_line, len(batch.records), reason)
        return _Answer(batch, failure.error_lines(), failure)

    try:
        response = session.post(url, data=batch.payload, headers=HEADERS, timeout=timeout_s)
    except requests.RequestException as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return failed(f"HTTP {response.status_code}: {response.text[:200]}")
    # one final newline ends the last line; it does not start an empty one (SageMaker's Line assembly agrees)
    lines = response.content.removesuffix(b"\n").split(b"\n")
    if len(lines) != len(batch.records):
        return failed(f"answered {len(lines)} lines for {len(batch.records)} records")
    if any(not line.strip() for line in lines):
        return failed(f"answered a blank line for one of {len(batch.records)} records")
    return _Answer(batch, lines)


class _InOrder:
    """Writes units' lines by unit index, holding back those that finish early."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.next = 0
        self.held: dict[int, list[bytes]] = {}
        self.written = 0

    def put(self, index: int, lines: list[bytes]) -> None:
        self.held[index] = lines
        while self.next in self.held:
            for line in self.held.pop(self.next):
                self.out.write(line + b"\n")
                self.written += 1
            self.next += 1


class _Run:
    """One local transform: submits batches with a bounded window and records each answer."""

    def __init__(self, summary: TransformSummary, writer: _InOrder, bar: tqdm) -> None:
        self.summary = summary
        self.writer = writer
        self.bar = bar

    def skip(self, unit: Oversized) -> None:
        self.summary.oversized.append(unit)
        self.writer.put(unit.index, [unit.error_line()])
        self.bar.update(1)

    def collect(self, futures: set[Future[_Answer]]) -> None:
        for future in futures:
            answer = future.result()  # _send turns every request failure into an _Answer
            if answer.failure:
                self.summary.failed.append(answer.failure)
            else:
                self.summary.record_errors.extend(error_lines(answer.lines, answer.batch.first_line))
            self.writer.put(answer.batch.index, answer.lines)
            self.bar.update(len(answer.batch.records))


def run_local_transform(input_path: str | Path, output_path: str | Path, url: str = DEFAULT_URL,
                        max_payload_mb: int = 6, concurrency: int = 4, timeout_s: float = 60.0,
                        progress: bool = False) -> TransformSummary:
    """Transform ``input_path`` (jsonlines) through the server at ``url`` into ``output_path``.

    Settings, files and the server are checked before the output is opened (SettingError, ServerUnreachable);
    after that a failed request does not raise: its lines carry an error (see ``TransformSummary.ok``).
    """
    require(1 <= max_payload_mb <= 100, "max_payload_mb", max_payload_mb, "an integer in [1, 100]")
    require(1 <= concurrency <= 64, "concurrency", concurrency, "an integer in [1, 64]")
    require(timeout_s > 0, "timeout_s", timeout_s, "seconds > 0")
    target = invocations_url(url)
    records = read_lines(input_path)
    summary = TransformSummary(Path(input_path), writable_path(output_path, "output"), records=len(records))
    with requests.Session() as session:
        session.mount(target, HTTPAdapter(pool_connections=1, pool_maxsize=concurrency))
        check_reachable(session, target, timeout_s)
        _transform(session, target, records, summary, max_payload_mb * BYTES_PER_MB, concurrency, timeout_s,
                   progress)
    log.info("local transform: %s", summary.describe().splitlines()[0])
    return summary


def _transform(session: requests.Session, target: str, records: list[bytes], summary: TransformSummary,
               max_bytes: int, concurrency: int, timeout_s: float, progress: bool) -> None:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool, open(summary.output_path, "wb") as out, \
            tqdm(total=len(records), unit="rec", disable=not progress) as bar:
        writer = _InOrder(out)
        run = _Run(summary, writer, bar)
        pending: set[Future[_Answer]] = set()
        for unit in split_batches(records, max_bytes):
            if isinstance(unit, Oversized):
                run.skip(unit)
                continue
            if len(pending) >= 2 * concurrency:  # bounded window: at most 2 x concurrency payloads in memory
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                run.collect(done)
            pending.add(pool.submit(_send, session, target, unit, timeout_s))
            summary.requests += 1
        run.collect(set(wait(pending).done))
    summary.output_lines = writer.written
    summary.seconds = time.perf_counter() - start
