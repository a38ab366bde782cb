"""Unique SageMaker resource names: a readable prefix, a UTC timestamp and a random suffix.

SageMaker refuses to reuse a training or transform job name ever (even after deletion) and names must match
``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``, so every name the launcher creates is new and at most 63 characters.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

MAX_LENGTH = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9-]+")
_STAMP = "%Y%m%d-%H%M%S"
_SUFFIX_HEX = 8  # 32 random bits: collisions within one second are out of reach in practice
_issued: set[str] = set()


def unique_name(prefix: str, now: datetime | None = None, max_length: int = MAX_LENGTH) -> str:
    """``{prefix}-{YYYYmmdd-HHMMSS}-{8 hex}``; the prefix is cleaned and shortened so the name fits ``max_length``
    characters (63; tuning jobs 32)."""
    stamp = (now or datetime.now(timezone.utc)).strftime(_STAMP)
    room = max_length - len(stamp) - _SUFFIX_HEX - 2
    base = _NOT_ALLOWED.sub("-", prefix).strip("-")[:room].strip("-") or "smtx"
    while True:  # also never hand out the same name twice in one process
        name = f"{base}-{stamp}-{secrets.token_hex(_SUFFIX_HEX // 2)}"
        if name not in _issued:
            _issued.add(name)
            return name
