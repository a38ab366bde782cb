"""Content types, as a table from media type to decoder/encoder.

Requests: ``application/json`` (``{"data": [{"text": ...}, ...]}``, a single ``{"text": ...}`` or a list of
records) and ``application/jsonlines`` (one JSON object per line; blank trailing lines ignored). Answers follow
``Accept``; a missing Accept or ``*/*`` answers in the request's own format. Parameters such as
``; charset=utf-8`` and any casing are accepted.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

from handlers.errors import BadRequest, NotAcceptable, UnsupportedMediaType

JSON, JSONLINES = "application/json", "application/jsonlines"
#: accepted spellings -> canonical media type
MEDIA_TYPES = {JSON: JSON, "text/json": JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
               "application/jsonl": JSONLINES, "application/json-lines": JSONLINES}
MAX_DEPTH = 64


def media_type(header: str | None, default: str | None = JSON) -> str | None:
    """Canonical media type of a Content-Type header (None when absent and no default)."""
    if header is None or not header.strip():
        return default
    base = header.split(";", 1)[0].strip().lower()
    if base not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"content type {base!r} is not supported; send one of {sorted(set(MEDIA_TYPES.values()))}")
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


def decode_jsonlines(body: Any) -> list[Any]:
    if isinstance(body, (dict, list)):
        raise BadRequest("application/jsonlines body must be text, one JSON object per line")
    lines = to_text(body).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # blank trailing lines carry nothing
    if not lines:
        raise BadRequest("body is empty")
    records: list[Any] = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            records.append(LineError(f"line {number} is blank"))
            continue
        try:
            records.append(parse_json(line, where=f"line {number}"))
        except BadRequest as exc:
            records.append(LineError(exc.message))
    return records


def encode_json(items: list[Any], terminated: bool = True) -> bytes:
    """``{"predictions": [...]}``; ``terminated`` concerns line formats only (a JSON document has no final newline)."""
    return json.dumps({"predictions": items}, ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_jsonlines(items: list[Any], terminated: bool = True) -> bytes:
    """One line per item. ``terminated``: the last line ends with a newline too -- except where the receiver adds
    one after every response (Batch Transform's ``AssembleWith=Line``), which would leave a blank line per request."""
    body = "\n".join(json.dumps(i, ensure_ascii=False, allow_nan=False) for i in items)
    return (body + "\n" if terminated and items else body).encode("utf-8")


DECODERS: dict[str, Callable[[Any], list[Any]]] = {JSON: decode_json, JSONLINES: decode_jsonlines}
ENCODERS: dict[str, Callable[[list[Any], bool], bytes]] = {JSON: encode_json, JSONLINES: encode_jsonlines}


def encode_error(error: dict, media: str, terminated: bool = True) -> bytes:
    """An error body: a JSON object in either format (jsonlines: the one line, terminated as answers are)."""
    return ENCODERS[JSONLINES]([error], terminated) if media == JSONLINES else \
        json.dumps(error, ensure_ascii=False).encode("utf-8")
