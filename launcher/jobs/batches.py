"""Batch Transform's view of a jsonlines file: records split into payloads, answers checked line by line.

SageMaker, with SplitType=Line and BatchStrategy=MultiRecord, sends as many whole lines per request as fit in
MaxPayloadInMB and expects one answer line per input line. The local transform splits the same way, and both
transforms check their output with ``check_output``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from launcher.checks import existing_file

#: MaxPayloadInMB is counted in MiB here; a payload never exceeds max_payload_mb * BYTES_PER_MB bytes
BYTES_PER_MB = 1024 * 1024
MAX_REPORTED = 20


@dataclass(frozen=True)
class Batch:
    """Consecutive records sent in one request."""

    index: int
    #: 1-based input line of the first record
    first_line: int
    records: tuple[bytes, ...]

    @property
    def payload(self) -> bytes:
        """The request body: each record followed by a newline."""
        return b"".join(record + b"\n" for record in self.records)


@dataclass(frozen=True)
class Oversized:
    """One record larger than a payload may be: reported, never sent."""

    index: int
    line: int
    size: int
    limit: int

    def error_line(self) -> bytes:
        """What the output carries on this record's line."""
        message = f"record is {self.size} bytes, over the {self.limit}-byte payload limit; not sent"
        return json.dumps({"error": message}).encode("utf-8")


def read_lines(path: str | Path, field: str = "input") -> list[bytes]:
    """The lines of a jsonlines file, without their line ends; a final newline does not start a record.

    A missing file is a SettingError naming ``field``.
    """
    data = existing_file(path, field).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def split_batches(records: Iterable[bytes], max_bytes: int) -> Iterator[Batch | Oversized]:
    """Consecutive records grouped into payloads of at most ``max_bytes`` (newlines counted), in input order."""
    current: list[bytes] = []
    index, size, first = 0, 0, 1
    for line, record in enumerate(records, 1):
        needed = len(record) + 1
        if current and size + needed > max_bytes:
            yield Batch(index, first, tuple(current))
            index, current, size = index + 1, [], 0
        if needed > max_bytes:
            yield Oversized(index, line, needed, max_bytes)
            index += 1
            continue
        if not current:
            first = line
        current.append(record)
        size += needed
    if current:
        yield Batch(index, first, tuple(current))


def error_message(line: bytes) -> str | None:
    """The message of an ``{"error": ...}`` line (or why the line is not a JSON object); None for an answer."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(value, dict):
        return "not a JSON object"
    return str(value["error"]) if "error" in value else None


@dataclass(frozen=True)
class ErrorLine:
    """An input line whose answer is an ``{"error": ...}`` object."""

    line: int
    message: str


@dataclass(frozen=True)
class OutputCheck:
    """Whether the output has exactly one line per input line, and which lines carry an error."""

    input_lines: int
    output_lines: int
    errors: tuple[ErrorLine, ...]

    @property
    def aligned(self) -> bool:
        """One output line per input line."""
        return self.input_lines == self.output_lines

    def describe(self) -> str:
        """A short report: counts, then up to MAX_REPORTED error lines."""
        head = f"{self.output_lines} output lines for {self.input_lines} input lines"
        lines = [head + ("" if self.aligned else " (MISMATCH)"), f"{len(self.errors)} records answered an error"]
        lines += [f"  line {e.line}: {e.message}" for e in self.errors[:MAX_REPORTED]]
        if len(self.errors) > MAX_REPORTED:
            lines.append(f"  ... and {len(self.errors) - MAX_REPORTED} more")
        return "\n".join(lines)


def error_lines(lines: Iterable[bytes], first_line: int = 1) -> list[ErrorLine]:
    """The error lines among ``lines``, numbered from ``first_line``."""
    found = ((first_line + i, error_message(line)) for i, line in enumerate(lines))
    return [ErrorLine(n, message) for n, message in found if message is not None]


def check_output(input_lines: int, output: list[bytes]) -> OutputCheck:
    """Compare an assembled output with its input's line count and collect its error lines."""
    return OutputCheck(input_lines, len(output), tuple(error_lines(output)))
