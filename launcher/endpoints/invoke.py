"""Send records to a real-time endpoint (single or multi-model) and return its predictions."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from launcher.aws import Clients
from launcher.checks import existing_file
from launcher.content_types import codec, media_type
from launcher.errors import ResponseError, SettingError

log = logging.getLogger(__name__)


def _records_from_jsonlines(text: str, where: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:  # each line is its own document: the decoder's line number would always be 1
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            # some of json's messages already end in "at" ("Unterminated string starting at")
            at = "" if exc.msg.endswith(" at") else " at"
            raise SettingError("file", f"{where}:{number}", f"one JSON object per line ({exc.msg}{at} column "
                                                             f"{exc.colno})") from None
        records.append(_record(value, f"{where}:{number}"))
    return records


def _records_from_json(text: str, where: str) -> list[dict[str, Any]]:
    value = json.loads(text)
    items = value.get("data") if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise SettingError("file", where, 'a JSON list of records or {"data": [...]}')
    return [_record(item, f"{where}, record {i}") for i, item in enumerate(items, 1)]


def _records_from_text(text: str, where: str) -> list[dict[str, Any]]:
    return [{"text": line} for line in text.splitlines() if line.strip()]


def _record(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingError(where, value, 'a JSON object such as {"text": "..."}')
    return value


#: file suffix -> how its records are read
READERS: dict[str, Callable[[str, str], list[dict[str, Any]]]] = {
    ".jsonl": _records_from_jsonlines,
    ".jsonlines": _records_from_jsonlines,
    ".json": _records_from_json,
    ".txt": _records_from_text,
}


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a .jsonl/.jsonlines (one object per line), .json (a list) or .txt (one text per line) file."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SettingError("file", str(path), f"a file ending with one of {sorted(READERS)}")
    try:
        return reader(existing_file(path, "file").read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise SettingError("file", str(path), f"UTF-8 text (byte {exc.start} is not)") from None
    except json.JSONDecodeError as exc:
        raise SettingError("file", f"{path}:{exc.lineno}", f"valid JSON ({exc.msg})") from None


def invoke(clients: Clients, endpoint: str, records: list[dict[str, Any]], content_type: str = "json",
           target_model: str | None = None) -> list[Any]:
    """Predictions for ``records``, one per record, in order (an error object for a record the server refused)."""
    if not records:
        raise SettingError("records", records, "at least one record")
    chosen = codec(content_type)
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": chosen.encode(records),
                              "ContentType": media_type(content_type), "Accept": media_type(content_type)}
    if target_model:
        kwargs["TargetModel"] = target_model
    response = clients.runtime.invoke_endpoint(**kwargs)
    predictions = chosen.decode(response["Body"].read())
    if len(predictions) != len(records):
        raise ResponseError(f"endpoint {endpoint} answered {len(predictions)} predictions for {len(records)} records")
    log.info("%s answered %d predictions", endpoint, len(predictions))
    return predictions


def error_records(predictions: list[Any]) -> list[int]:
    """The 1-based positions of the predictions that are ``{"error": ...}`` objects (records the server refused)."""
    return [i for i, p in enumerate(predictions, 1) if isinstance(p, dict) and "error" in p]
