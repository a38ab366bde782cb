"""Our two content types, as seen by a client: records in, predictions out.

``application/json``: ``{"data": [{"text": ...}, ...]}`` answered by ``{"predictions": [...]}``.
``application/jsonlines``: one JSON object per line, answered by one JSON object per line, in order; a record
the server could not handle is answered by ``{"error": "..."}`` on its line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from launcher.errors import ResponseError, SettingError
from tasks.serving_contract import JSON, JSONLINES


def _encode_json(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"data": records}, ensure_ascii=False).encode("utf-8")


def _decode_json(body: bytes) -> list[Any]:
    answer = _parse(body.decode("utf-8"), "the response body")
    if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
        raise ResponseError(f"expected {{\"predictions\": [...]}} from {JSON}, got {_preview(answer)}")
    return list(answer["predictions"])


def _encode_jsonlines(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _decode_jsonlines(body: bytes) -> list[Any]:
    lines = body.decode("utf-8").splitlines()
    return [_parse(line, f"response line {i}") for i, line in enumerate(lines, 1)]


def _parse(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResponseError(f"{what} is not JSON ({exc.msg}): {text[:200]!r}") from None


def _preview(value: Any) -> str:
    return json.dumps(value)[:200]


@dataclass(frozen=True)
class Codec:
    """How a client encodes records and decodes predictions for one content type."""

    encode: Callable[[list[dict[str, Any]]], bytes]
    decode: Callable[[bytes], list[Any]]


CODECS: dict[str, Codec] = {
    JSON: Codec(_encode_json, _decode_json),
    JSONLINES: Codec(_encode_jsonlines, _decode_jsonlines),
}
#: short names accepted on the command line
ALIASES = {"json": JSON, "jsonlines": JSONLINES, "jsonl": JSONLINES}


def codec(content_type: str) -> Codec:
    """The codec for a content type or its short name; SettingError for anything else."""
    full = ALIASES.get(content_type, content_type)
    if full not in CODECS:
        raise SettingError("content_type", content_type, f"one of {sorted(CODECS)} (or {sorted(ALIASES)})")
    return CODECS[full]


def media_type(content_type: str) -> str:
    """The full media type for a content type or its short name."""
    return ALIASES.get(content_type, content_type)
