"""Fine-tuning with the Hugging Face Trainer, on features made by the shared task layer.

The Trainer only optimises and picks the best checkpoint on dev; every reported score is recomputed at the end
through ``tasks.predict`` -- the exact path the endpoint runs -- so metrics describe what users will be served.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tasks.batching import pad
from tasks.encode import encode
from tasks.features import Feature
from tasks.fields import Record
from tasks.kinds import task_kind
from tasks.predict import predict
from tasks.spec import TaskSpec
from training.config import TrainConfig
from training.data import Dataset
from training.device import TrainDevice

log = logging.getLogger(__name__)


class FeatureDataset:
    """A list of features the Trainer can index; padding happens in the collator."""

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = list(features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> Feature:
        return self.features[i]


class Collator:
    """Pads a batch with the same code serving uses, and hands torch tensors to the model."""

    def __init__(self, spec: TaskSpec, pad_token_id: int) -> None:
        self.inputs, self.labels = spec.inputs, task_kind(spec.task).label_batch
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[Feature]) -> dict[str, Any]:
        import torch

        batch = pad(features, self.inputs, self.pad_token_id, labels=self.labels)
        return {k: torch.from_numpy(v) for k, v in batch.items()}


@dataclass
class Fitted:
    spec: TaskSpec
    tokenizer: Any
    model: Any
    log_history: list[dict[str, Any]]
    train_seconds: float
    train_samples_per_second: float
    #: False on the other ranks of a distributed run: only rank 0 evaluates and writes
    is_main: bool = True


def gold(records: Sequence[Record]) -> list[Any]:
    """The gold labels of ``records``, in order."""
    return [r.label for r in records]


def score(spec: TaskSpec, records: Sequence[Record], preds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The task's scores of ``preds`` against the gold labels of ``records``."""
    return task_kind(spec.task).score(spec.labels, gold(records), preds)


def _metric_fn(spec: TaskSpec, records: Sequence[Record],
               features: Sequence[Feature]) -> Callable[[Any], dict[str, float]]:
    """compute_metrics for the Trainer: decode the eval logits exactly as serving does, then score."""
    kind = task_kind(spec.task)

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        outputs = [logits[i, : len(f)] if kind.head == "token" else logits[i] for i, f in enumerate(features)]
        metrics = kind.score(spec.labels, gold(records), kind.decode(spec, records, features, outputs))
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}

    return compute


def _eval_steps(config: TrainConfig) -> int | None:
    if config.eval_steps:
        return config.eval_steps
    if config.max_steps > 0:
        return max(1, math.ceil(config.max_steps / 4))
    return None  # once per epoch


def training_arguments(config: TrainConfig, kind: Any, output_dir: str, device: TrainDevice,
                       persist: bool = True) -> Any:
    """``persist``: write a checkpoint at every evaluation (a run resumes from the last one; the best is reloaded
    from disk at the end). Without it nothing is written: ``KeepBest`` keeps the best weights in memory.
    ``device``: where and in which precision (``training.device.choose``)."""
    from transformers import TrainingArguments

    steps = _eval_steps(config)
    strategy = "steps" if steps else "epoch"
    return TrainingArguments(
        output_dir=output_dir,
        max_steps=config.max_steps,
        num_train_epochs=config.num_train_epochs,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        learning_rate=config.learning_rate,
        # transformers 5 has no warmup_ratio: a warmup_steps below 1 is read as a ratio
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        seed=config.seed,
        eval_strategy=strategy,
        save_strategy=strategy if persist else "no",
        eval_steps=steps,
        # under the "epoch" strategy there are no steps: keep the library's own default, which it then ignores
        save_steps=steps or TrainingArguments.save_steps,
        save_total_limit=2,
        load_best_model_at_end=persist,
        metric_for_best_model=kind.primary_metric,
        greater_is_better=kind.greater_is_better,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        activation_checkpointing=config.gradient_checkpointing,
        # non-reentrant checkpointing works under DDP and with inputs that need no grad (token ids)
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        **device.trainer_arguments(persist),
        disable_tqdm=False,
    )


def keep_best(metric: str, greater_is_better: bool) -> Any:
    """A Trainer callback that keeps the weights of the best evaluation so far in memory and restores them at the
    end: what ``load_best_model_at_end`` does, without writing a checkpoint (model and optimizer state, ~3x the
    model's size) at every evaluation when no run will ever resume from it."""
    from transformers import TrainerCallback

    class KeepBest(TrainerCallback):
        def __init__(self) -> None:
            self.best: float | None = None
            self.best_step: int | None = None
            self.weights: dict[str, Any] | None = None

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        model: Any = None, **kwargs: Any) -> None:
            value = (metrics or {}).get(f"eval_{metric}")
            if value is None or model is None:
                return
            if self.best is None or (value > self.best if greater_is_better else value < self.best):
                self.best, self.best_step = float(value), state.global_step
                self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

        def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if self.weights is not None and model is not None:
                model.load_state_dict(self.weights)
                log.info("best dev %s %.4f at step %d: those weights are kept", metric, self.best, self.best_step)
                self.weights = None

    return KeepBest()


def head_groups(param_groups: list[dict[str, Any]], head: set[int], ratio: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups with the head's parameters (``head``: their ids) moved to groups of their
    own at ``ratio`` times the learning rate, keeping each group's weight decay. The scheduler, made after the
    optimizer, scales every group's rate by the same warm-up and decay."""
    body, heads = [], []
    for group in param_groups:
        rest = {k: v for k, v in group.items() if k != "params"}
        body.append({**rest, "params": [p for p in group["params"] if id(p) not in head]})
        mine = [p for p in group["params"] if id(p) in head]
        if mine:
            heads.append({**rest, "params": mine, "lr": group["lr"] * ratio})
    return [g for g in body if g["params"]] + heads


def _trainer_class(head_names: frozenset[str], ratio: float) -> Any:
    """The Trainer, with the new head's parameters learning at ``ratio`` times the learning rate."""
    from transformers import Trainer

    class HeadRateTrainer(Trainer):
        def create_optimizer(self, model: Any = None) -> Any:
            made_here = self.optimizer is None  # an optimizer made before (or passed in) is left as it is
            optimizer = super().create_optimizer(model)
            source = model or self.model  # the Trainer holds its model by now; None only in its type
            if made_here and ratio != 1.0 and head_names and source is not None:
                head = {id(p) for n, p in source.named_parameters() if n in head_names}
                optimizer.param_groups[:] = head_groups(optimizer.param_groups, head, ratio)
            return optimizer

    return HeadRateTrainer


def fit(config: TrainConfig, spec: TaskSpec, tokenizer: Any, model: Any, data: Dataset, output_dir: str,
        device: TrainDevice, callbacks: Sequence[Any] = (), persist: bool = True,
        head_names: frozenset[str] = frozenset()) -> Fitted:
    """Train; the returned model is the best by the dev metric. ``persist``: see ``training_arguments``.
    ``head_names``: the parameters the base checkpoint did not have (the new head); they learn at
    ``config.head_learning_rate_ratio`` times the learning rate."""
    kind = task_kind(spec.task)
    train_features = encode(spec, tokenizer, data.train, with_labels=True)
    dev_features = encode(spec, tokenizer, data.dev, with_labels=True)
    log.info("features: train %d (from %d records), dev %d", len(train_features), len(data.train), len(dev_features))
    args = training_arguments(config, kind, output_dir, device, persist)
    callbacks = list(callbacks) + ([] if persist else [keep_best(kind.primary_metric, kind.greater_is_better)])
    trainer = _trainer_class(head_names, config.head_learning_rate_ratio)(
        model=model, args=args, train_dataset=FeatureDataset(train_features),
        eval_dataset=FeatureDataset(dev_features), data_collator=Collator(spec, tokenizer.pad_token_id),
        compute_metrics=_metric_fn(spec, data.dev, dev_features), callbacks=callbacks,
    )
    # Our heads' losses are plain means over their batch; they ignore num_items_in_batch. A forward taking
    # **kwargs makes the Trainer assume otherwise: it then multiplies the loss by the number of processes (2x the
    # gradient, and the reported eval_loss, on two GPUs) and skips dividing it by the accumulation steps.
    trainer.model_accepts_loss_kwargs = False
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(output_dir) if persist else None)
    # under mixed precision accelerate wrapped the model's forward in torch.autocast, and the Trainer leaves that
    # wrapper on after training: taken off here, or on the CPU under bf16 the evaluation, the tuned thresholds and
    # test_predictions.jsonl would be computed in bf16 while the endpoint serves the same weights in fp32
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    return Fitted(spec=spec, tokenizer=tokenizer, model=model, log_history=list(trainer.state.log_history),
                  train_seconds=float(result.metrics.get("train_runtime", 0.0)),
                  train_samples_per_second=float(result.metrics.get("train_samples_per_second", 0.0)),
                  is_main=trainer.is_world_process_zero())


def _last_checkpoint(output_dir: str) -> str | None:
    """Resume from a checkpoint a previous (e.g. spot-interrupted) run left in the checkpoint directory."""
    from transformers.trainer_utils import get_last_checkpoint

    found: str | None = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if found:
        log.info("resuming from %s", found)
    return found


def with_tuned_thresholds(spec: TaskSpec, runner: Any, tokenizer: Any, dev: Sequence[Record],
                          batch_size: int) -> TaskSpec:
    """The spec serving uses: the task row's tuning on dev (multilabel: per-label thresholds that maximise dev
    F1), or ``spec`` itself for a task that tunes nothing."""
    tune = task_kind(spec.task).tune
    if tune is None:
        return spec
    preds = predict(spec, tokenizer, runner, dev, all_scores=True, max_batch_size=batch_size)
    return tune(spec, gold(dev), preds)
