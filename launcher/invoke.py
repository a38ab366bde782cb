"""Send records to a real-time endpoint (single or multi-model) and return its predictions."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from launcher.aws import Clients
from launcher.content_types import codec, media_type
from launcher.errors import ConfigError, ResponseError

log = logging.getLogger(__name__)


def _records_from_jsonlines(text: str) -> list[dict[str, Any]]:
    return [_record(json.loads(line), i) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _records_from_json(text: str) -> list[dict[str, Any]]:
    value = json.loads(text)
    items = value.get("data") if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ConfigError("file", text[:80], 'a JSON list of records or {"data": [...]}')
    return [_record(item, i) for i, item in enumerate(items, 1)]


def _records_from_text(text: str) -> list[dict[str, Any]]:
    return [{"text": line} for line in text.splitlines() if line.strip()]


def _record(value: Any, index: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"record {index}", value, 'a JSON object such as {"text": "..."}')
    return value


#: file suffix -> how its records are read
READERS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
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
        raise ConfigError("file", str(path), f"a file ending with one of {sorted(READERS)}")
    try:
        return reader(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError("file", f"{path}:{exc.lineno}", f"valid JSON ({exc.msg})") from None


def invoke(clients: Clients, endpoint: str, records: list[dict[str, Any]], content_type: str = "json",
           target_model: str | None = None) -> list[Any]:
    """Predictions for ``records``, one per record, in order (an error object for a record the server refused)."""
    if not records:
        raise ConfigError("records", records, "at least one record")
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
