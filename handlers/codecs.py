"""Content types, as a table from media type to decoder/encoder.

Requests: ``application/json`` (``{"data": [{"text": ...}, ...]}``, a single ``{"text": ...}`` or a list of
records) and ``application/jsonlines`` (one JSON object per line; blank trailing lines ignored). Answers follow
``Accept``; a missing Accept or ``*/*`` answers in the request's own format. Parameters such as
``; charset=utf-8`` and any casing are accepted.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterator, overload

from handlers.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from tasks.serving_contract import JSON, JSONLINES

#: accepted spellings -> canonical media type
MEDIA_TYPES = {JSON: JSON, "text/json": JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
               "application/jsonl": JSONLINES, "application/json-lines": JSONLINES}
MAX_DEPTH = 64


@overload
def media_type(header: str | None) -> str: ...
@overload
def media_type(header: str | None, default: str | None) -> str | None: ...


def media_type(header: str | None, default: str | None = JSON) -> str | None:
    """Canonical media type of a Content-Type header (None when absent and no default)."""
    if header is None or not header.strip():
        return default
    base = header.split(";", 1)[0].strip().lower()
    if base not in MEDIA_TYPES:
        supported = sorted(set(MEDIA_TYPES.values()))
        raise UnsupportedMediaType(f"content type {base!r} is not supported; send one of {supported}")
    return MEDIA_TYPES[base]


def _accept_ranges(accept: str) -> list[tuple[float, int, str]]:
    ranges = []
    for position, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((q, position, fields[0].lower()))
    return ranges


def negotiate(accept: str | None, request_type: str) -> str:
    """The answer's media type from an Accept header (q-values honoured); 406 when nothing fits.

    A specific type with q=0 is refused even where a wildcard would admit it (RFC 9110 12.5.1)."""
    if accept is None or not accept.strip():
        return request_type
    ranges = _accept_ranges(accept)
    refused = {MEDIA_TYPES[t] for q, _, t in ranges if q <= 0 and t in MEDIA_TYPES}
    for q, _, candidate in sorted(ranges, key=lambda r: (-r[0], r[1])):
        if q <= 0:
            continue
        if candidate in ("*/*", "application/*", ""):
            choices = [request_type, JSON, JSONLINES]
            allowed = [c for c in choices if c not in refused]
            if allowed:
                return allowed[0]
            continue
        if candidate in MEDIA_TYPES and MEDIA_TYPES[candidate] not in refused:
            return MEDIA_TYPES[candidate]
    raise NotAcceptable(f"cannot answer in {accept!r}; accepted: {JSON}, {JSONLINES} or */*")


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON (NaN and Infinity are not allowed)")


def _check_depth(value: Any, depth: int = 0) -> None:
    """Nesting bound, and no NaN/Infinity even in a body TorchServe parsed itself (its parser admits them)."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"JSON is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise BadRequest(f"{name} is not valid JSON (NaN and Infinity are not allowed)")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def parse_json(text: str, where: str = "body") -> Any:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(f"{where} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        # some of json's messages already end in "at" ("Unterminated string starting at")
        at = "" if exc.msg.endswith(" at") else " at"
        raise BadRequest(f"{where} is not valid JSON: {exc.msg}{at} line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit conversion limit
        raise BadRequest(f"{where} is not acceptable JSON: {exc}") from None
    _check_depth(value)
    return value


def to_text(body: Any) -> str:
    if isinstance(body, (bytes, bytearray)):
        try:
            return bytes(body).decode("utf-8-sig")  # a leading BOM is tolerated
        except UnicodeDecodeError as exc:
            raise BadRequest(f"body is not valid UTF-8 (byte {body[exc.start]:#04x} at offset {exc.start})") from None
    if isinstance(body, str):
        return body[1:] if body.startswith("\ufeff") else body
    raise BadRequest("body is empty" if body is None else f"unexpected body of type {type(body).__name__}")


def _records_from_json(value: Any) -> list[Any]:
    if isinstance(value, dict) and "data" in value:
        data = value["data"]
        if not isinstance(data, list):
            raise BadRequest(f"'data' must be a list of records, got {type(data).__name__}")
        return data
    if isinstance(value, dict):
        return [value]  # a single {"text": ...} record
    if isinstance(value, list):
        return value
    raise BadRequest(f"body must be an object with 'data' (a list of records), got {type(value).__name__}")


def decode_json(body: Any) -> list[Any]:
    if isinstance(body, (dict, list)):  # TorchServe may have parsed it already
        _check_depth(body)
        return _records_from_json(body)
    text = to_text(body)
    if not text.strip():
        raise BadRequest("body is empty")
    return _records_from_json(parse_json(text))


class LineError:
    """A jsonlines line that is not a JSON object; kept in place so answers stay aligned with lines."""

    def __init__(self, message: str) -> None:
        self.message = message


def _lines(body: Any) -> Iterator[tuple[int, str]]:
    """(number, text) of each line of a jsonlines body. Bytes are decoded a line at a time, so a large body (an
    asynchronous request of hundreds of MB) is never copied whole into one string and then again into lines."""
    if isinstance(body, str):
        yield from enumerate(to_text(body).split("\n"), start=1)
        return
    if not isinstance(body, (bytes, bytearray)):
        to_text(body)  # raises the right BadRequest
    view = memoryview(body)
    start = 3 if body[:3] == b"\xef\xbb\xbf" else 0  # a leading BOM is tolerated
    number = 0
    while start <= len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        number += 1
        try:
            line = str(view[start:end], "utf-8")
        except UnicodeDecodeError as exc:
            at = start + exc.start
            raise BadRequest(f"body is not valid UTF-8 (byte {body[at]:#04x} at offset {at})") from None
        yield number, line
        start = end + 1


def decode_jsonlines(body: Any) -> list[Any]:
    if isinstance(body, (dict, list)):
        raise BadRequest("application/jsonlines body must be text, one JSON object per line")
    records: list[Any] = []
    trailing_blanks = 0
    for number, line in _lines(body):
        line = line.rstrip("\r")
        if not line.strip():
            records.append(LineError(f"line {number} is blank"))
            trailing_blanks += 1
            continue
        trailing_blanks = 0
        try:
            records.append(parse_json(line, where=f"line {number}"))
        except BadRequest as exc:
            records.append(LineError(exc.message))
    if trailing_blanks:
        del records[-trailing_blanks:]  # blank trailing lines carry nothing
    if not records:
        raise BadRequest("body is empty")
    return records


class AnswerWriter:
    """Encodes answers one at a time into one growing buffer, so a large answer (an asynchronous request of a
    million records) is held once, as bytes, rather than as a list of dicts and then again as their encoding.

    ``application/json`` -> ``{"predictions": [...]}``; ``application/jsonlines`` -> one line per answer, the last
    one ending with a newline when ``terminated`` (not under Batch Transform's AssembleWith=Line, which adds one
    after every response and would leave a blank line)."""

    def __init__(self, media: str, terminated: bool = True) -> None:
        self.media, self.terminated, self.count = media, terminated, 0
        self.buffer = bytearray(b'{"predictions": [' if media == JSON else b"")

    def add(self, item: Any) -> None:
        """Append one answer; ValueError (and nothing appended) for what JSON cannot carry, such as NaN."""
        encoded = json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")
        if self.count:
            self.buffer += b", " if self.media == JSON else b"\n"
        self.buffer += encoded
        self.count += 1

    def finish(self) -> bytearray:
        if self.media == JSON:
            self.buffer += b"]}"
        elif self.terminated and self.count:
            self.buffer += b"\n"
        return self.buffer


def encode(media: str, items: list[Any], terminated: bool = True) -> bytes:
    """All of ``items`` in ``media`` at once (see AnswerWriter)."""
    writer = AnswerWriter(media, terminated)
    for item in items:
        writer.add(item)
    return bytes(writer.finish())


def encode_jsonlines(items: list[Any], terminated: bool = True) -> bytes:
    """One line per item, the last one terminated unless ``terminated`` is False (see AnswerWriter)."""
    return encode(JSONLINES, items, terminated)


DECODERS: dict[str, Callable[[Any], list[Any]]] = {JSON: decode_json, JSONLINES: decode_jsonlines}


def encode_error(error: dict[str, Any], media: str, terminated: bool = True) -> bytes:
    """An error body: a JSON object in either format (jsonlines: the one line, terminated as answers are)."""
    if media == JSONLINES:
        return encode_jsonlines([error], terminated)
    return json.dumps(error, ensure_ascii=False).encode("utf-8")
