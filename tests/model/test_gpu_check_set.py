"""The check set travels in the archive, and the load-time fp16 gate runs it on the serving device.

No GPU here: the gate's own code (``runtimes.torch_runtime.place``) runs on the CPU, where torch computes fp16
too, against the archive's real check set. What a GPU adds is only the device string.
"""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from archive.build import RuntimeOptions, build
from handlers.service import InferenceService, Request
from runtimes.checkpoint import read_serving
from runtimes.device import FP16_TOLERANCE, ServePlan
from runtimes.parity import CHECK_FILE, MAX_CHECK_RECORDS, read_check_set, run_check
from runtimes.torch_runtime import load_checkpoint, place
from tests.helpers.handler_fixtures import trained  # noqa: F401

BODY = b'{"data": [{"text": "the team won the final match"}, {"text": "sales grew"}]}'
#: what choose() says for a GPU with tensor cores, with the CPU standing in for the GPU
FP16_HERE = ServePlan("cpu", "torch", "fp16", "torch serves on the GPU")


@pytest.fixture(scope="module")
def archived(trained, tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, extracted torch archive)."""
    checkpoint = trained("classif")
    root = tmp_path_factory.mktemp("gpu-check")
    built = build(checkpoint, root / "out", runtime=RuntimeOptions(runtime="torch"))
    with tarfile.open(built.tarball) as tf:
        tf.extractall(root / "extracted", filter="data")
    return checkpoint, root / "extracted"


@pytest.fixture
def copy(archived, tmp_path) -> Path:
    return Path(shutil.copytree(archived[1], tmp_path / "archive"))


def test_a_new_archive_carries_the_check_set_with_torchs_fp32_answers(archived):
    checkpoint, extracted = archived
    gpu = json.loads((extracted / "serving.json").read_text())["gpu"]
    assert gpu["runtime"] == "torch" and gpu["check_file"] == CHECK_FILE and gpu["fp16_tolerance"] == FP16_TOLERANCE
    lines = (extracted / CHECK_FILE).read_text().splitlines()
    assert gpu["check_records"] == len(lines) and 3 < len(lines) <= MAX_CHECK_RECORDS
    spec, tokenizer, runner = load_checkpoint(checkpoint)
    records, expected = read_check_set(extracted, spec)
    assert len(records[-1].text.split()) < len(records[2].text.split())  # the length probes come first
    assert run_check(spec, tokenizer, runner, records) == expected  # the checkpoint's fp32 answers, exactly


def test_an_archive_without_the_check_set_still_loads_on_the_cpu(archived, copy):
    (copy / CHECK_FILE).unlink()
    service = InferenceService(copy)
    assert service.serving["device"] == "cpu" and service.runtime == "torch"
    answers = [s.handle([Request(BODY, {"content-type": "application/json"})])[0] for s in
               (service, InferenceService(archived[0]))]
    assert answers[0].status == 200 and answers[0].body == answers[1].body


def test_a_worker_given_a_gpu_torch_cannot_see_serves_on_the_cpu_as_today(archived, caplog):
    caplog.set_level("INFO", logger="runtimes.load")
    service = InferenceService(archived[1], gpu_id=0)
    if service.serving["device"] != "cpu":
        pytest.skip("a CUDA device is visible: the GPU path is make gpu-check's")
    assert service.serving["reason"].startswith("TorchServe assigned GPU 0, but")
    assert sum(r.message.startswith("serving on the CPU") and "with torch fp32: TorchServe assigned GPU 0" in r.message
               for r in caplog.records) == 1


def gate(path: Path) -> tuple[ServePlan, object]:
    spec, tokenizer, runner = load_checkpoint(path)
    placed, plan = place(path, spec, read_serving(path), tokenizer, runner, FP16_HERE)
    return plan, next(placed.model.parameters()).dtype


def test_the_fp16_gate_runs_the_archives_check_set_on_the_serving_device(archived):
    import torch

    plan, dtype = gate(archived[1])
    assert plan.gate["records"] == len((archived[1] / CHECK_FILE).read_text().splitlines())
    assert plan.gate["tolerance"] == FP16_TOLERANCE
    assert plan.precision == ("fp16" if plan.gate["passed"] else "fp32")
    assert dtype == (torch.float16 if plan.precision == "fp16" else torch.float32)


def test_fp16_that_changes_a_label_falls_back_to_fp32(copy):
    import torch

    rows = [json.loads(line) for line in (copy / CHECK_FILE).read_text().splitlines()]
    labels = sorted(rows[0]["expected"]["scores"])
    rows[0]["expected"]["pred"] = next(x for x in labels if x != rows[0]["expected"]["pred"])
    (copy / CHECK_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan, dtype = gate(copy)
    assert (plan.precision, dtype) == ("fp32", torch.float32)
    assert plan.gate["label_agreement"] < 1 and plan.reason.startswith("fp16 failed the parity gate")


def test_fp16_without_a_check_set_falls_back_to_fp32(copy):
    import torch

    (copy / CHECK_FILE).unlink()
    plan, dtype = gate(copy)
    assert (plan.precision, dtype, plan.gate) == ("fp32", torch.float32, None)
    assert "no check set" in plan.reason
