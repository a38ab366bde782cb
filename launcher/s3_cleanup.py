"""Remove what the launcher wrote to S3: uploaded data, transform inputs and outputs, async inputs.

The launcher writes each of these to a folder of its own with a unique name (``{name}-{YYYYmmdd-HHMMSS}-{8 hex}``,
``launcher.names``) directly under the prefix, or under ``data/`` and ``async-input/``. Only such folders are
removed; model artifacts (``output/``), checkpoints and multi-model prefixes are never touched, since a deployed
endpoint or a later job may read them.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from launcher.endpoints.async_invoke import INPUT_FOLDER
from launcher.errors import SettingError
from launcher.s3 import S3Uri

#: a folder name ``launcher.names.unique_name`` made
_WRITTEN = re.compile(r".+-\d{8}-\d{6}-[0-9a-f]{8}")
#: folders under the prefix whose children are launcher-written folders too
PARENTS = ("data", INPUT_FOLDER)


@dataclass(frozen=True)
class Written:
    """One launcher-written folder: its S3 prefix, its keys and their total size."""

    uri: str
    keys: tuple[str, ...]
    size: int


def _folder_of(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) >= 2 and _WRITTEN.fullmatch(parts[0]):
        return parts[0]
    if len(parts) >= 3 and parts[0] in PARENTS and _WRITTEN.fullmatch(parts[1]):
        return f"{parts[0]}/{parts[1]}"
    return None


def find_written(s3: Any, prefix: S3Uri) -> list[Written]:
    """The launcher-written folders under ``prefix``, oldest name first."""
    base = prefix.as_prefix()
    folders: dict[str, list[tuple[str, int]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=base.bucket, Prefix=base.key):
        for item in page.get("Contents", []):
            folder = _folder_of(item["Key"][len(base.key):])
            if folder is not None:
                folders.setdefault(folder, []).append((item["Key"], int(item.get("Size", 0))))
    return [Written(str(base.join(name).as_prefix()), tuple(k for k, _ in items), sum(s for _, s in items))
            for name, items in sorted(folders.items())]


def confirm(question: str, yes: bool, stdin: TextIO = sys.stdin, ask: Callable[[str], str] = input) -> bool:
    """True when ``yes``, or when the person at the terminal answers y; SettingError (exit 2) without a terminal,
    so a CI job never deletes by accident or hangs on a prompt."""
    if yes:
        return True
    if not stdin.isatty():
        raise SettingError("yes", False, "--yes", message=f"{question} needs an answer and there is no terminal to "
                           "ask on: pass --yes to delete without asking")
    return ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def delete_written(s3: Any, written: list[Written]) -> int:
    """Delete every key of ``written``, 1000 per request; the number of keys deleted."""
    keys = [(S3Uri.parse(w.uri).bucket, key) for w in written for key in w.keys]
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        s3.delete_objects(Bucket=chunk[0][0], Delete={"Objects": [{"Key": k} for _, k in chunk], "Quiet": True})
    return len(keys)
