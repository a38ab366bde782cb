"""Distributed training through the SageMaker entrypoint, on this CPU: one process, two processes on one host
(torchrun, gloo) and two "hosts" (two torchruns on 127.0.0.1, each with its own /opt/ml) must write the same
model: same dev evaluations and best step, same test labels, probabilities within ``TOLERANCE``.

Dropout is switched off in the tiny base model so that the three runs see the same arithmetic: what is left is
the order of floating-point sums (gloo's all-reduce of two half-batch gradients against one full-batch
gradient). Measured on this machine: test probabilities differ by at most ~1e-7 and weights by ~1e-8 between the runs
(see the printed figures with ``pytest -s``); TOLERANCE leaves two orders of magnitude on top.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_train_contract import make_opt_ml

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5
HPS = {"task_name": "classif", "max_steps": "4", "eval_steps": "1", "logging_steps": "1", "seed": "7"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny BERT without dropout (every run then computes the same function of its batch)."""
    import shutil

    folder = tmp_path_factory.mktemp("no-dropout") / "bert"
    shutil.copytree(tiny_model_dir("bert"), folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def start(base: Path, env: dict[str, str]) -> subprocess.Popen:
    full = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "entrypoints", "train"], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-5000:]
    return out


def opt_ml(tmp_path: Path, name: str, data: Path, model: Path, batch: int) -> Path:
    return make_opt_ml(tmp_path / name, data, {**HPS, "model_name": str(model),
                                               "per_device_train_batch_size": str(batch)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, base_model, small_data) -> dict[str, Path]:
    """The same job three ways; the value is each run's /opt/ml (the second host's too)."""
    tmp, data = tmp_path_factory.mktemp("distributed"), small_data("classif")
    bases = {"one process": opt_ml(tmp, "single", data, base_model, 8),
             "two processes": opt_ml(tmp, "ddp", data, base_model, 4),
             "host 1 of 2": opt_ml(tmp, "host1", data, base_model, 4),
             "host 2 of 2": opt_ml(tmp, "host2", data, base_model, 4)}
    finish(start(bases["one process"], {"SM_NUM_GPUS": "0"}))
    # two "GPUs" on a CPU host: torchrun starts two gloo processes, 4 records each per step
    logs = {"two processes": finish(start(bases["two processes"], {"SM_NUM_GPUS": "2"}))}
    cluster = {"SM_HOSTS": '["algo-1", "algo-2"]', "SM_NUM_GPUS": "0", "SM_NETWORK_INTERFACE_NAME": "lo",
               "SMTX_RENDEZVOUS_ADDR": "127.0.0.1", "SMTX_RENDEZVOUS_PORT": str(free_port())}
    hosts = [start(bases[f"host {i} of 2"], {**cluster, "SM_CURRENT_HOST": f"algo-{i}"}) for i in (1, 2)]
    for i, proc in enumerate(hosts, 1):
        logs[f"host {i} of 2"] = finish(proc)
    bases["logs"] = logs  # type: ignore[assignment]
    return bases


def predictions(base: Path) -> list[dict]:
    return [json.loads(line) for line in (base / "model" / "test_predictions.jsonl").read_text().splitlines()]


def max_score_gap(a: list[dict], b: list[dict]) -> float:
    return max(abs(x["scores"][k] - y["scores"][k]) if "scores" in x else abs(x["score"] - y["score"])
               for x, y in zip(a, b) for k in (x.get("scores") or {"": 0}))


def evaluations(base: Path) -> tuple[list[int], list[float]]:
    """Steps evaluated, and at each the dev loss and accuracy (the loss moves where the accuracy of a tiny model
    barely does)."""
    log = [e for e in json.loads((base / "model" / "trainer_log.json").read_text()) if "eval_loss" in e]
    return [e["step"] for e in log], [v for e in log for v in (e["eval_loss"], e["eval_accuracy"])]


def weights(base: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(base / "model" / "model.safetensors"))


def test_only_the_first_host_writes_the_model(runs):
    assert (runs["host 1 of 2"] / "model" / "model.safetensors").is_file()
    assert list((runs["host 2 of 2"] / "model").iterdir()) == []
    for name in ("one process", "two processes", "host 1 of 2", "host 2 of 2"):
        assert not (runs[name] / "output" / "failure").exists(), name
    assert "host algo-2 (2 of 2), 1 process(es) here, 2 in all" in runs["logs"]["host 2 of 2"]
    assert "2 process(es) on 2 host(s)" in runs["logs"]["host 1 of 2"]
    assert "effective batch size 8 = 4 per device x 2 process(es) x 1" in runs["logs"]["two processes"]


@pytest.mark.parametrize("name", ["two processes", "host 1 of 2"])
def test_distributed_runs_write_the_one_process_model(runs, name):
    reference, other = runs["one process"], runs[name]
    # evaluation during training is gathered from both ranks: same dev scores at the same steps, same best
    (steps, scores), (reference_steps, reference_scores) = evaluations(other), evaluations(reference)
    assert steps == reference_steps == [1, 2, 3, 4]
    assert scores == pytest.approx(reference_scores, abs=TOLERANCE)
    ours, theirs = predictions(other), predictions(reference)
    assert [p["label"] for p in ours] == [p["label"] for p in theirs]
    gap = max_score_gap(ours, theirs)
    a, b = weights(other), weights(reference)
    weight_gap = max(float(abs(a[k] - b[k]).max()) for k in b)
    print(f"\n{name} vs one process: test probabilities differ by {gap:.2e}, weights by {weight_gap:.2e}")
    assert gap <= TOLERANCE and weight_gap <= TOLERANCE
    final = json.loads((other / "model" / "metrics.json").read_text())
    assert final["test"] == pytest.approx(json.loads((reference / "model" / "metrics.json").read_text())["test"],
                                          abs=TOLERANCE)
