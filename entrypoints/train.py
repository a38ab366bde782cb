"""``train``: SageMaker's training contract around ``training.run.train``.

Reads ``<base>/input/config/hyperparameters.json`` (or ``SM_HPS``) and the ``training`` channel, writes the
model to ``<base>/model`` (or ``SM_MODEL_DIR``), and on failure writes the reason to ``<base>/output/failure``
and exits non-zero. ``<base>`` is ``/opt/ml`` unless ``SAGEMAKER_BASE_DIR`` moves it. SIGTERM (SageMaker's
stop, spot interruption) ends training cleanly: the reason is written and no model is left behind.

Several GPUs or several hosts (``SM_NUM_GPUS`` > 1, ``SM_HOSTS`` with more than one name): this process starts
torchrun for its host (``entrypoints.cluster``) and waits; the workers run this module again. Only global rank 0,
on the first host, writes the model; every host writes its failure file when it fails.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from entrypoints.cluster import Cluster
    from training.callbacks import StopRequest
    from training.config import TrainConfig

log = logging.getLogger("entrypoints.train")


@dataclass(frozen=True)
class TrainPaths:
    hyperparameters: dict[str, str]
    data_dir: Path
    model_dir: Path
    failure_file: Path
    checkpoint_dir: Path | None
    keep_checkpoints: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TrainPaths":
        base = base_dir(env)
        if "SM_HPS" in env:
            hps = json.loads(env["SM_HPS"])
        else:
            hp_file = base / "input" / "config" / "hyperparameters.json"
            hps = json.loads(hp_file.read_text(encoding="utf-8")) if hp_file.is_file() else {}
        # synced to S3 by SageMaker when a checkpoint URI is configured (spot training resumes from it)
        checkpoints = base / "checkpoints"
        return cls(
            hyperparameters={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in hps.items()},
            data_dir=Path(env.get("SM_CHANNEL_TRAINING", base / "input" / "data" / "training")),
            model_dir=Path(env.get("SM_MODEL_DIR", base / "model")),
            failure_file=base / "output" / "failure",
            # without it no checkpoint is written, on one process or many: every rank keeps the best weights
            # in memory (training.trainer.keep_best), so hosts need no shared folder
            checkpoint_dir=checkpoints if checkpoints.is_dir() else None,
            keep_checkpoints=checkpoints.is_dir(),
        )


def base_dir(env: Mapping[str, str]) -> Path:
    """SageMaker's /opt/ml, or where SAGEMAKER_BASE_DIR moves it (tests, local runs)."""
    return Path(env.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def write_failure(path: Path, reason: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason.rstrip() + "\n", encoding="utf-8")


def launch(cluster: "Cluster", paths: TrainPaths) -> int:
    """Run this host's torchrun and wait; SIGTERM/SIGINT go on to it (it stops its workers, which write the
    reason). A failure no worker could describe (rendezvous, a killed worker) still leaves a failure file."""
    command = cluster.torchrun_command()
    log.info("%s; launching %s", cluster.describe(), shlex.join(command))
    child = subprocess.Popen(command, env={**cluster.worker_env(), **os.environ})
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda sig, frame: child.send_signal(sig))
    status = child.wait()
    if status != 0 and not paths.failure_file.exists():
        write_failure(paths.failure_file, f"distributed training failed on host {cluster.current_host}: torchrun "
                                          f"exited with status {status}; the log says why")
    return 0 if status == 0 else 1


#: training outputs kept beside the serving layout in the model artifact, for people to read
EXTRAS = ("report", "test_predictions.jsonl", "trainer_log.json")


def train_and_package(config: TrainConfig, paths: TrainPaths, stop: StopRequest) -> None:
    """Train, then lay the model directory out exactly as `make archive`'s model.tar.gz: the training job's
    artifact deploys as it is to a real-time endpoint, a multi-model endpoint or Batch Transform."""
    import shutil
    import tempfile

    from archive.build import RuntimeOptions, build
    from archive.checks import safe_extract
    from training.outputs import StagedOutput
    from training.run import train

    with tempfile.TemporaryDirectory(prefix="smtx-train-") as tmp:
        result = train(config, paths.data_dir, Path(tmp) / "checkpoint", paths.checkpoint_dir, stop,
                       paths.keep_checkpoints)
        if result.output is None:  # another rank of a distributed run: rank 0 writes
            return
        # the job's artifact is the only copy of the trained weights: keep them even where ONNX serves
        built = build(result.output, Path(tmp) / "archive", name="model",
                      runtime=RuntimeOptions(data=paths.data_dir, keep_weights=True))
        with StagedOutput(paths.model_dir) as staged:
            safe_extract(built.tarball, staged.path)
            for name in EXTRAS:
                source = result.output / name
                if source.is_dir():
                    shutil.copytree(source, staged.path / name)
                elif source.is_file():
                    shutil.copy2(source, staged.path / name)
            stop.check()
            staged.commit()


def main(argv: list[str] | None = None) -> int:
    from training.logs import setup_logging

    setup_logging()
    paths = TrainPaths.from_env(os.environ)
    from entrypoints.cluster import Cluster, ClusterError
    from runtimes.model_source import ModelError
    from training.callbacks import Interrupted, StopRequest
    from training.config import ConfigError, TrainConfig
    from training.data import DataError
    from training.outputs import OutputError

    stop = StopRequest()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.request(
        f"training stopped by signal {signal.Signals(signum).name}; no model was written"))
    try:
        config = TrainConfig.from_hyperparameters(paths.hyperparameters)  # a bad value fails here, before torchrun
        if "LOCAL_RANK" not in os.environ:  # not a torchrun worker yet: does this host need torchrun?
            cluster = Cluster.from_env(os.environ, base_dir(os.environ))
            if cluster.distributed:
                return launch(cluster, paths)
        train_and_package(config, paths, stop)
    except (ConfigError, ClusterError, DataError, ModelError, OutputError, Interrupted) as exc:
        log.error("%s", exc)
        write_failure(paths.failure_file, str(exc))
        return 1
    except Exception as exc:  # broad on purpose: the contract: any failure must leave its reason for SageMaker
        log.exception("training failed")
        write_failure(paths.failure_file, f"{type(exc).__name__}: {exc}")
        return 1
    return 0
