"""The torch runtime and the one place that turns a checkpoint directory into a tokenizer and a model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tasks.families import family_for
from tasks.kinds import task_kind
from tasks.spec import TASK_SPEC_FILE, TaskSpec


def load_tokenizer(path: str | Path, model_type: str) -> Any:
    from transformers import AutoTokenizer

    kwargs = {"add_prefix_space": True} if family_for(model_type).add_prefix_space else {}
    return AutoTokenizer.from_pretrained(str(path), **kwargs)


def model_class(task: str) -> Any:
    import transformers

    head = task_kind(task).head
    return transformers.AutoModelForTokenClassification if head == "token" else \
        transformers.AutoModelForSequenceClassification


def read_spec(checkpoint: str | Path) -> TaskSpec:
    return TaskSpec.from_dict(json.loads((Path(checkpoint) / TASK_SPEC_FILE).read_text(encoding="utf-8")))


class TorchRunner:
    """Runs a transformers model in inference mode on numpy inputs."""

    def __init__(self, model: Any, input_names: tuple[str, ...]) -> None:
        import torch

        self._torch = torch
        self.model = model.eval()
        self.input_names = input_names

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        inputs = {name: torch.from_numpy(batch[name]) for name in self.input_names}
        with torch.inference_mode():
            logits: np.ndarray = self.model(**inputs).logits.float().numpy()
        return logits


def set_threads(threads: int) -> None:
    """Intra-op threads of torch in this process (a worker's share of the cores)."""
    import torch

    torch.set_num_threads(threads)


def load_checkpoint(checkpoint: str | Path, spec: TaskSpec | None = None) -> tuple[TaskSpec, Any, TorchRunner]:
    """Spec, tokenizer and a torch runner from a self-describing checkpoint (safetensors weights only);
    ``spec``: the one the caller already read, so that task_spec.json is not read twice."""
    spec = spec or read_spec(checkpoint)
    tokenizer = load_tokenizer(checkpoint, spec.model_type)
    model = model_class(spec.task).from_pretrained(str(checkpoint), use_safetensors=True)
    return spec, tokenizer, TorchRunner(model, family_for(spec.model_type).input_names())
