"""The SageMaker training contract, on the host: a fake /opt/ml tree, string hyperparameters, real processes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT
from tests.helpers.opt_ml import make_opt_ml, run_train

pytestmark = pytest.mark.slow


def test_good_run_writes_the_model_and_no_failure(tmp_path, tiny_model_dir, small_data):
    # the SageMaker Python SDK JSON-encodes every value on top of SageMaker's strings
    hps = {"task_name": '"classif"', "model_name": json.dumps(str(tiny_model_dir("bert"))), "max_steps": '"3"',
           "use_bbox": "false", "per_device_train_batch_size": "8", "sagemaker_region": '"eu-west-1"'}
    base = make_opt_ml(tmp_path / "ml", small_data("classif"), hps)
    proc = run_train(base)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert (base / "model" / "model.safetensors").is_file()
    assert json.loads((base / "model" / "task_spec.json").read_text())["task"] == "classif"
    assert not (base / "output" / "failure").exists()
    assert "test_accuracy=" in out


def test_bad_data_writes_failure_and_no_model(tmp_path, tiny_model_dir, small_data):
    data = tmp_path / "bad"
    data.mkdir()
    for split in ("train", "dev", "test"):
        data.joinpath(f"{split}.csv").write_bytes((small_data("ner") / f"{split}.csv").read_bytes())
    lines = data.joinpath("dev.csv").read_text().splitlines()
    lines[3] = lines[3] + " O"  # one label too many on line 4
    data.joinpath("dev.csv").write_text("\n".join(lines) + "\n")
    base = make_opt_ml(tmp_path / "ml", data, {"task_name": "ner", "model_name": str(tiny_model_dir("bert"))})
    proc = run_train(base)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    failure = (base / "output" / "failure").read_text()
    assert "dev.csv, line 4, column labels" in failure and "expected one BIO label per word" in failure
    assert list((base / "model").iterdir()) == []


def test_unknown_hyperparameter_is_a_failure_listing_valid_names(tmp_path, small_data):
    base = make_opt_ml(tmp_path / "ml", small_data("classif"), {"task_name": "classif", "epochs": "3"})
    proc = run_train(base)
    proc.communicate(timeout=120)
    failure = (base / "output" / "failure").read_text()
    assert proc.returncode != 0 and "unknown hyperparameter 'epochs'" in failure and "num_train_epochs" in failure


def test_sigterm_stops_training_cleanly(tmp_path, tiny_model_dir, small_data):
    hps = {"task_name": "classif", "model_name": str(tiny_model_dir("bert")), "max_steps": "100000",
           "per_device_train_batch_size": "4", "logging_steps": "1"}
    base = make_opt_ml(tmp_path / "ml", small_data("classif"), hps)
    proc = run_train(base)
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until optimisation is under way
        if "train_loss=" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "SIGTERM" in (base / "output" / "failure").read_text()
    assert list((base / "model").iterdir()) == []


def test_two_process_ddp_on_cpu(tmp_path, tiny_model_dir, small_data):
    """torch distributed through the Trainer: 2 gloo processes on this CPU, one checkpoint written by rank 0."""
    out = tmp_path / "model"
    with socket.socket() as sock:  # torchrun's static rendezvous needs a concrete free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "--master_addr=127.0.0.1", "-m", "training",
           "--data", str(small_data("classif")), "--out", str(out), "task_name=classif",
           f"model_name={tiny_model_dir('bert')}", "max_steps=4", "per_device_train_batch_size=4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert "accuracy" in metrics["test"]
    log_history = json.loads((out / "trainer_log.json").read_text())
    assert max(e.get("step", 0) for e in log_history) == 4
