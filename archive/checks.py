"""What a checkpoint must satisfy before it is archived (and before a server loads it)."""
from __future__ import annotations

import json
from pathlib import Path

from tasks.errors import SpecError
from tasks.spec import TASK_SPEC_FILE, TaskSpec

#: pickle-based weight formats: loading one can run arbitrary code, so they are refused outright
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class CheckpointError(ValueError):
    """The checkpoint cannot be served; the message says what is wrong and where."""


def check_checkpoint(path: str | Path) -> TaskSpec:
    """The checkpoint's spec, after checking spec, weights, labels and tokenizer."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is not a directory")
    pickled = sorted(p.name for p in path.rglob("*") if p.suffix.lower() in PICKLED_SUFFIXES)
    if pickled:
        raise CheckpointError(f"checkpoint {path} holds pickled weights {pickled}; only safetensors are accepted "
                              "(re-save with save_pretrained, which writes model.safetensors)")
    if not list(path.glob("*.safetensors")):
        raise CheckpointError(f"checkpoint {path} has no .safetensors weights")
    try:
        spec = TaskSpec.from_dict(json.loads((path / TASK_SPEC_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no {TASK_SPEC_FILE}; was it written by our training?") from None
    except (ValueError, SpecError) as exc:
        raise CheckpointError(f"{path / TASK_SPEC_FILE} is not valid: {exc}") from None
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable config.json: {exc}") from None
    _check_head(spec, config, path)
    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt", "vocab.json")):
        raise CheckpointError(f"checkpoint {path} has no tokenizer files (tokenizer.json)")
    return spec


def _check_head(spec: TaskSpec, config: dict, path: Path) -> None:
    if config.get("model_type") != spec.model_type:
        raise CheckpointError(f"config.json model_type {config.get('model_type')!r} differs from the task spec's "
                              f"{spec.model_type!r}")
    id2label = config.get("id2label") or {}
    if len(id2label) != spec.num_outputs:
        raise CheckpointError(f"the model head has {len(id2label)} outputs but the task spec needs "
                              f"{spec.num_outputs} ({path})")
    if spec.labels and [id2label.get(str(i)) for i in range(len(spec.labels))] != list(spec.labels):
        raise CheckpointError(f"config.json id2label {id2label} does not match the task spec labels "
                              f"{list(spec.labels)}")
