"""Whether a model a user names can be fine-tuned or archived, checked before anything loads its weights.

``check_model`` turns every way a named model cannot be used -- a folder that does not exist or lacks
``config.json``, a hub id that cannot be fetched, a model that needs its own Python code, a type without the
task's head, a tokenizer that will not load -- into one ``ModelError`` whose message is one line naming the model
and the reason. Cheap first: the folder and ``config.json`` (``tasks.model_config``, which the launcher shares),
then transformers' tables, and the tokenizer last; the weights are left to the caller's ``from_pretrained``.
transformers is imported when a check runs, never at import time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.model_config import SENTENCEPIECE_FILES, config_problem, describe, local_config, looks_local, unknown_type

#: the heads a task kind asks for (``tasks.kinds``' ``head``) -> transformers' table of the types that have one
HEAD_TABLES = {"token": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
               "sequence": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"}
#: what converting a SentencePiece model needs: module -> its package
CONVERTERS = {"sentencepiece": "sentencepiece", "google.protobuf": "protobuf"}
#: the special tokens the task layer frames and pads every input with
SPECIAL_TOKENS = ("cls_token", "sep_token", "pad_token")
NOT_FETCHED = "not a local folder and could not be fetched from the Hugging Face Hub (offline or no such repository)"


class ModelError(Exception):
    """A named model cannot be used; ``str()`` is the one line to show: the model and the reason."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(describe(model, reason))
        self.model = model
        self.reason = reason


@dataclass(frozen=True)
class ModelSource:
    """A model that passed ``check_model``: where it is, what type it is, and the tokenizer the check loaded."""

    name: str
    local: bool
    model_type: str
    tokenizer: Any


def check_model(name: str, head: str) -> ModelSource:
    """Check that ``name`` (a local folder or a hub id) can be loaded with a ``head`` ("token" or "sequence")
    classification head and its tokenizer; ModelError otherwise."""
    if head not in HEAD_TABLES:
        raise ValueError(f"head={head!r} is not valid; expected one of {list(HEAD_TABLES)}")
    path = Path(name).expanduser()
    local = looks_local(name, path.exists())
    config = _local_config(name, path) if local else _hub_config(name)
    model_type = config["model_type"]
    _check_head(name, model_type, head)
    return ModelSource(name=name, local=local, model_type=model_type, tokenizer=_tokenizer(name, path, local))


def _local_config(name: str, path: Path) -> dict[str, Any]:
    files = {p.name for p in path.iterdir()} if path.is_dir() else None
    try:
        return local_config(path.exists(), files, lambda: (path / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelError(name, str(exc)) from None


def _hub_config(name: str) -> dict[str, Any]:
    """The raw config.json of a hub model (from the local cache when offline), before transformers interprets
    it: ``auto_map`` must be seen as written."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(name)
    except (OSError, ValueError):  # offline without a cached copy, no such repository, or not a valid id
        raise ModelError(name, NOT_FETCHED) from None
    problem = config_problem(config)
    if problem:
        raise ModelError(name, problem)
    return dict(config)


def _check_head(name: str, model_type: str, head: str) -> None:
    from transformers import CONFIG_MAPPING
    from transformers.models.auto import modeling_auto

    if model_type not in CONFIG_MAPPING:
        raise ModelError(name, unknown_type(model_type))
    if model_type not in getattr(modeling_auto, HEAD_TABLES[head]):
        raise ModelError(name, f"{model_type} has no {head}-classification head in transformers")


def _tokenizer(name: str, path: Path, local: bool) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if local else name)
    except Exception as exc:  # noqa: BLE001 -- its loaders raise what they meet (JSON, KeyError, OSError, ...)
        cause = (_missing_converter(path) if local else None) or _first_line(exc)
        raise ModelError(name, f"its tokenizer will not load: {cause}") from None
    if getattr(tokenizer, "backend_tokenizer", None) is None:  # the serving tokenizer is the tokenizers backend
        raise ModelError(name, f"its tokenizer ({type(tokenizer).__name__}) is not backed by the tokenizers library")
    missing = [token for token in SPECIAL_TOKENS if getattr(tokenizer, f"{token}_id", None) is None]
    if missing:  # every text is framed [CLS] ... [SEP] and batches padded: the encoder needs all three
        raise ModelError(name, f"its tokenizer has no {' or '.join(missing)}; every input needs them")
    return tokenizer


def _missing_converter(path: Path) -> str | None:
    """Why a folder whose only tokenizer is a SentencePiece model (DeBERTa-v3's spm.model) cannot be converted,
    where that is why: transformers then falls back to other readers and reports their failure instead
    (``tiktoken is required``), which names neither the file nor the packages."""
    if (path / "tokenizer.json").is_file():
        return None
    models = [name for name in SENTENCEPIECE_FILES if (path / name).is_file()]
    missing = [package for module, package in CONVERTERS.items() if not _importable(module)]
    if not models or not missing:
        return None
    return f"{models[0]} is a SentencePiece model; converting it needs {' and '.join(missing)} " \
           "(pip install -r requirements.txt)"


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: the cause, kept to the one line the error is allowed."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
