"""``train --model-name`` naming a folder on this machine: checked here, before anything is uploaded or started.

The launcher loads no model code (no torch, no transformers), so it checks what the folder and its
``config.json`` alone tell (``tasks.model_config``, the verdicts training's own check gives too): the folder
exists, holds ``config.json`` with a ``model_type``, weights and tokenizer files, and needs no code of its own
(``auto_map``). A hub id is passed through: the training job fetches it and checks the rest
(``runtimes.model_source``).
"""
from __future__ import annotations

from pathlib import Path

from launcher.errors import SettingError
from tasks.model_config import CONFIG_FILE, describe, local_config, looks_local

FLAG = "--model-name"


def check_model_name(name: str | None) -> None:
    """SettingError (exit status 2) where ``name`` is a local folder that cannot be fine-tuned; None: the default."""
    if not name:
        return
    path = Path(name).expanduser()
    if not looks_local(name, path.exists()):
        return
    files = {p.name for p in path.iterdir()} if path.is_dir() else None
    try:
        local_config(path.exists(), files, lambda: (path / CONFIG_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SettingError("model_name", name, "a model folder or a hub id",
                           message=f"{FLAG}: {describe(name, str(exc))}") from None
