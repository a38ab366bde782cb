"""The torch runtime and the one place that turns a checkpoint directory into a tokenizer and a model.

The device is a parameter: ``TorchRunner`` runs where its model is, and ``place`` moves a loaded (CPU, fp32)
model to the GPU a ``runtimes.device.ServePlan`` names, in the precision the load-time parity gate allows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.device import FP16_TOLERANCE, ServePlan, gate_precision
from runtimes.parity import parity, read_check_set, run_check
from runtimes.word_start import add_prefix_space, pre_tokenizer_of, word_start
from tasks.families import longest_input, model_inputs
from tasks.kinds import Resolved, TaskKind, TaskLike, as_resolved, resolve, task_kind
from tasks.serving_manifest import ServingManifest
from tasks.spec import TASK_SPEC_FILE, TaskSpec


def load_tokenizer(path: str | Path, prefix_space: bool) -> Any:
    """transformers' tokenizer of ``path`` as training used it: ``prefix_space`` is ``TaskSpec.add_prefix_space``
    (what ``load_base_tokenizer`` decided), so serving tokenises exactly as training did."""
    from transformers import AutoTokenizer

    # the classes that rebuild their pre-tokenizer from the option (RoBERTa's) want it at load
    tokenizer = AutoTokenizer.from_pretrained(str(path), **({"add_prefix_space": True} if prefix_space else {}))
    if prefix_space and word_start(pre_tokenizer_of(tokenizer.backend_tokenizer)).missing:
        add_prefix_space(tokenizer.backend_tokenizer)  # the others (a plain fast tokenizer's) ignore it
    return tokenizer


def load_base_tokenizer(path: str | Path, plain: Any = None) -> tuple[Any, bool]:
    """The base model's tokenizer for training, and whether pre-split words needed a prefix space: decided from
    the tokenizer's own pre-tokenizer (``runtimes.word_start.word_start``), never from the model type.
    ``plain``: the tokenizer as loaded without options, where the caller has it already."""
    from transformers import AutoTokenizer

    plain = plain if plain is not None else AutoTokenizer.from_pretrained(str(path))
    if not word_start(pre_tokenizer_of(plain.backend_tokenizer)).missing:
        return plain, False
    return load_tokenizer(path, True), True


def model_facts(model: Any) -> tuple[tuple[str, ...], int | None]:
    """The inputs ``model``'s forward takes and its longest input, derived from the model itself (see
    ``tasks.families``): the forward's parameters and config, and the position ids its embeddings reserve."""
    import inspect

    config = model.config.to_dict()
    inputs = model_inputs(model.config.model_type, config, inspect.signature(model.forward).parameters)
    positions = getattr(getattr(model.base_model, "embeddings", None), "position_embeddings", None)
    padding_idx = getattr(positions, "padding_idx", None)
    return inputs, longest_input(config, 0 if padding_idx is None else padding_idx + 1)


def model_class(task: str | TaskKind) -> Any:
    """transformers' auto class of the task's head (``task``: its row, or its name)."""
    import transformers

    head = (task if isinstance(task, TaskKind) else task_kind(task)).head
    return transformers.AutoModelForTokenClassification if head == "token" else \
        transformers.AutoModelForSequenceClassification


def read_spec(checkpoint: str | Path) -> TaskSpec:
    return _read_resolved(checkpoint).spec


def _read_resolved(checkpoint: str | Path) -> Resolved:
    return resolve(TaskSpec.from_dict(json.loads((Path(checkpoint) / TASK_SPEC_FILE).read_text(encoding="utf-8"))))


#: serving precisions -> torch dtype names (runtimes.device.ServePlan.precision)
DTYPES = {"fp32": "float32", "fp16": "float16"}


class TorchRunner:
    """Runs a transformers model in inference mode on numpy inputs, on ``device`` (where the model already is).

    Inputs stay integers (ids, masks, boxes) and go to the device; logits come back as float32 numpy whatever
    the model's precision, so decoding never sees fp16."""

    def __init__(self, model: Any, input_names: tuple[str, ...], device: str = "cpu") -> None:
        import torch

        self._torch = torch
        self.model = model.eval()
        self.input_names = input_names
        self.device = torch.device(device)

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        # .to() of a tensor already on the device is the tensor itself: the CPU path copies nothing more than before
        inputs = {name: torch.from_numpy(batch[name]).to(self.device) for name in self.input_names}
        with torch.inference_mode():
            logits: np.ndarray = self.model(**inputs).logits.float().cpu().numpy()
        return logits


def on_device(runner: TorchRunner, device: str, precision: str, keep: bool = False) -> TorchRunner:
    """A runner of ``runner``'s model on ``device`` in ``precision`` ("fp32" or "fp16"); ``keep``: move a copy,
    leaving ``runner`` as it was (the fp32 model to fall back to while fp16 is checked)."""
    import copy

    import torch

    if precision not in DTYPES:
        raise ValueError(f"precision={precision!r} is not valid; expected one of {list(DTYPES)}")
    model = copy.deepcopy(runner.model) if keep else runner.model
    model = model.to(device=torch.device(device), dtype=getattr(torch, DTYPES[precision]))
    return TorchRunner(model, runner.input_names, device)


def place(model_dir: Path, spec: TaskLike, serving: ServingManifest, tokenizer: Any, runner: TorchRunner,
          plan: ServePlan) -> tuple[TorchRunner, ServePlan]:
    """``runner``'s model on the plan's GPU: fp16 where it passes the parity gate against the archive's fp32
    answers (``runtimes.parity``'s check set, run here on this device), fp32 otherwise; and the plan, gated."""
    task = as_resolved(spec)
    figures = None
    candidate: TorchRunner | None = None
    if plan.precision == "fp16":
        check = read_check_set(model_dir, task)
        if check is not None:
            records, expected = check
            candidate = on_device(runner, plan.device, "fp16", keep=True)  # the fp32 model stays for a fallback
            archived = serving.gpu.fp16_tolerance if serving.gpu else None
            tolerance = FP16_TOLERANCE if archived is None else float(archived)
            figures = parity(task, expected, run_check(task, tokenizer, candidate, records), tolerance)
    plan = gate_precision(plan, figures)
    if plan.precision == "fp16" and candidate is not None:
        return candidate, plan
    del candidate  # before the fp32 model takes its place in the GPU's memory
    return on_device(runner, plan.device, "fp32"), plan


def set_threads(threads: int) -> None:
    """Intra-op threads of torch in this process (a worker's share of the cores)."""
    import torch

    torch.set_num_threads(threads)


def load_checkpoint(checkpoint: str | Path, spec: TaskLike | None = None) -> tuple[TaskSpec, Any, TorchRunner]:
    """Spec, tokenizer and a torch runner from a self-describing checkpoint (safetensors weights only);
    ``spec``: the one the caller already read (resolved, ideally), so that task_spec.json is not read twice."""
    task = _read_resolved(checkpoint) if spec is None else as_resolved(spec)
    tokenizer = load_tokenizer(checkpoint, task.spec.prefix_space)
    model = model_class(task.kind).from_pretrained(str(checkpoint), use_safetensors=True)
    return task.spec, tokenizer, TorchRunner(model, task.spec.inputs)
