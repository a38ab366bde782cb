"""What a base model must show before anything loads it: pure judgements over a name, a folder's file names and
its ``config.json``, shared by the two places that check a model.

``runtimes.model_source`` (training and ``make archive``) adds what needs transformers: whether transformers
knows the type, has the head, and can load the tokenizer. The launcher (``launcher.jobs.model_folder``), which
loads no model code, checks a local folder with these alone before it uploads or starts anything. Both read the
files; the verdicts and their words live here, once.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Collection

CONFIG_FILE = "config.json"
#: weight files transformers loads (a sharded checkpoint has its index); the archive later accepts safetensors only
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
#: tokenizer files that are a SentencePiece model (DeBERTa-v3, XLM-R, ALBERT), which transformers converts with the
#: sentencepiece and protobuf packages
SENTENCEPIECE_FILES = ("spm.model", "sentencepiece.bpe.model", "tokenizer.model")
#: files a tokenizer is built from: without any, transformers "loads" a tokenizer of the special tokens alone
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", *SENTENCEPIECE_FILES)
NEVER_RUN = "we never run a checkpoint's own code (trust_remote_code)"


def describe(model: str, reason: str) -> str:
    """The one line every check prints: the model as the user named it, and why it cannot be used."""
    return f"model {model!r} cannot be used: {reason}"


def looks_local(name: str, exists: bool) -> bool:
    """Whether ``name`` means a folder on this machine rather than a hub id; ``exists``: whether that path exists.

    A hub id is ``name`` or ``owner/name``; a name that could be one and does not exist here is taken as one (so
    ``google/electra-small`` is never refused because a folder ``google`` happens to be in the working directory)."""
    return exists or name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or name.count("/") > 1 or "\\" in name


def local_config(exists: bool, files: Collection[str] | None, read_config: Callable[[], str]) -> dict[str, Any]:
    """The ``config.json`` of a local model folder, after checking what the folder holds; ValueError with the reason
    otherwise. ``exists``: whether the path exists; ``files``: the names directly inside it (None: not a folder);
    ``read_config``: reads its config.json (the caller's I/O). Cheap first: nothing here loads a model."""
    if not exists:
        raise ValueError("no such folder")
    if files is None:
        raise ValueError("it is a file, not a model folder")
    if CONFIG_FILE not in files:
        raise ValueError(f"the folder has no {CONFIG_FILE} (a model folder is what save_pretrained writes)")
    try:
        text = read_config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{CONFIG_FILE} cannot be read ({exc})") from None
    config = parse_config(text)
    if not any(name in files for name in WEIGHT_FILES) and not any(name.endswith(".safetensors") for name in files):
        raise ValueError(f"the folder has no weights (one of {list(WEIGHT_FILES)})")
    if not any(name in files for name in TOKENIZER_FILES):
        raise ValueError(f"the folder has no tokenizer files (one of {list(TOKENIZER_FILES)})")
    return config


def parse_config(text: str) -> dict[str, Any]:
    """``config.json``'s content; ValueError naming the reason where it is not valid or not ours to run."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{CONFIG_FILE} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_FILE} is not a JSON object")
    problem = config_problem(config)
    if problem:
        raise ValueError(problem)
    return config


def config_problem(config: dict[str, Any]) -> str | None:
    """Why a model with this config cannot be used, as far as the config alone tells, or None."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        return f"{CONFIG_FILE} has no model_type"
    if config.get("auto_map"):
        classes = ", ".join(f"{k}: {v}" for k, v in sorted(config["auto_map"].items())) \
            if isinstance(config["auto_map"], dict) else str(config["auto_map"])
        return f"it needs its own Python code ({CONFIG_FILE} auto_map: {classes}); {NEVER_RUN}"
    return None


def unknown_type(model_type: str) -> str:
    """The reason for a ``model_type`` transformers has no class for: only the checkpoint's own code could load it."""
    return f"model type {model_type!r} is not one transformers knows: only the checkpoint's own code could load " \
           f"it, and {NEVER_RUN}"
