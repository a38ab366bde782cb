"""Every CPU path an archive gates (ONNX Runtime fp32 and int8, OpenVINO fp32 and bf16), and the one a worker
serves: each passed path answers, through the real handler, what the model card says it scored.

The checkpoints are real (a tiny random model trained for two steps) and archived by ``build``; the archive is
read back from the extracted ``model.tar.gz``, as an endpoint loads it.
"""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from archive.build import RuntimeOptions, build
from handlers.service import InferenceService, Settings
from runtimes.checkpoint import CheckpointError, read_checkpoint, read_serving
from runtimes.cpu import read_cpu
from runtimes.precision import choose_path
from tasks.kinds import task_kind
from tasks.predict import predict
from tasks.serving_manifest import PATH_NAMES
from training.data import load_dataset

CASES = [("bert", "classif", "classif"), ("bert", "ner", "ner")]
_ARCHIVES: dict[str, Path] = {}


@pytest.fixture(scope="module")
def archived(tiny_model_dir, small_data, tmp_path_factory):
    """``archived(task)`` -> (extracted archive, data folder) of a tiny BERT trained for two steps (once)."""
    from training.config import TrainConfig
    from training.run import train

    def get(arch: str, task: str, folder: str) -> tuple[Path, Path]:
        if task not in _ARCHIVES:
            config = TrainConfig.from_hyperparameters({
                "task_name": task, "model_name": str(tiny_model_dir(arch)), "max_steps": "2",
                "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8", "eval_steps": "2"})
            root = tmp_path_factory.mktemp(f"precisions-{task}")
            checkpoint = train(config, small_data(folder), root / "model").output
            built = build(checkpoint, root / "out", name=task, runtime=RuntimeOptions(data=small_data(folder)))
            extracted = root / "extracted"
            extracted.mkdir()
            with tarfile.open(built.tarball) as tf:
                tf.extractall(extracted, filter="data")
            _ARCHIVES[task] = extracted
        return _ARCHIVES[task], small_data(folder)

    return get


@pytest.mark.parametrize(("arch", "task", "folder"), CASES)
def test_every_path_is_gated_and_listed_with_its_scores(archived, arch, task, folder):
    extracted, _ = archived(arch, task, folder)
    serving = read_serving(extracted)
    by_name = {path.name: path for path in serving.paths}
    assert tuple(by_name) == PATH_NAMES
    fp32 = by_name["onnx-fp32"]
    assert fp32.passed and fp32.gate == "parity" and fp32.figures and fp32.figures["passed"]
    metric = task_kind(task).primary_metric
    # OpenVINO's fp32 answers what torch answers, like ONNX Runtime's, so it scores the same
    ov = by_name["openvino-fp32"]
    assert ov.passed and ov.figures and ov.figures["max_abs_diff"] <= 1e-5, ov.reason
    assert ov.scores == fp32.scores and fp32.scores and fp32.scores["metric"] == metric
    for name in ("onnx-int8", "openvino-bf16"):
        path = by_name[name]
        if name == "openvino-bf16" and not read_cpu().native_bf16:
            assert not path.passed and path.reason.startswith("not gated: this machine's CPU"), path.reason
            continue
        figures = path.figures
        assert figures is not None and figures["metric"] == f"dev_{metric}" and path.gate == "dev"
        assert figures["test"]["metric"] == f"test_{metric}"
        assert path.passed == (figures["loss"] <= figures["tolerance"] and figures["test"]["passed"])
        assert path.scores and path.scores["dev"] == figures[path.precision]
    # the files of the passed paths are in the archive, and no other model file
    files = {p.name for p in extracted.iterdir() if p.suffix in (".onnx", ".xml", ".bin")}
    wanted = {name for path in serving.passed_paths for name in path.files}
    assert files == wanted


@pytest.mark.parametrize(("arch", "task", "folder"), CASES)
def test_each_passed_path_serves_what_the_model_card_says_it_scored(archived, arch, task, folder):
    """Served == evaluated, per path: the handler's answers on test.csv score exactly the card's test figure."""
    extracted, data = archived(arch, task, folder)
    serving = read_serving(extracted)
    test = load_dataset(data, task, False).test
    kind = task_kind(task)
    card = (extracted / "README.md").read_text(encoding="utf-8")
    assert "## Served precisions" in card
    for path in serving.paths:
        scores = path.scores or {}
        row = next(line for line in card.splitlines() if line.startswith(f"| {path.name} |"))
        assert f"| {'yes' if path.passed else 'no'} |" in row
        if not path.passed:
            continue
        assert f"| {scores['test']:.4f} |" in row
        service = InferenceService(extracted, Settings(precision=path.name, threads=1))
        assert (service.serving["runtime"], service.serving["precision"]) == (path.runtime, path.precision)
        preds = predict(service.task, service.tokenizer, service.runner, test, all_scores=True, max_batch_size=4)
        served = kind.score(service.spec.labels, [r.label for r in test], preds)[kind.primary_metric]
        assert served == pytest.approx(scores["test"], abs=1e-9), path.name


@pytest.mark.parametrize(("arch", "task", "folder"), CASES[:1])
def test_auto_serves_the_table_s_choice_for_this_cpu_and_logs_it(archived, arch, task, folder, caplog):
    extracted, _ = archived(arch, task, folder)
    serving = read_serving(extracted)
    expected, _ = choose_path(serving.paths, read_cpu().kind)
    with caplog.at_level("INFO", logger="runtimes.load"):
        service = InferenceService(extracted, Settings(threads=1))
    assert service.serving["precision"] == expected.precision and service.serving["runtime"] == expected.runtime
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("serving on"))
    cpu = read_cpu()
    assert line.startswith(f"serving on the CPU ({cpu.model}, {cpu.kind}) with {expected.runtime} "
                           f"{expected.precision}: "), line


@pytest.mark.parametrize(("arch", "task", "folder"), CASES[:1])
def test_an_archive_missing_a_listed_path_s_file_is_refused_naming_it(archived, arch, task, folder, tmp_path):
    extracted, _ = archived(arch, task, folder)
    copy = tmp_path / "copy"
    shutil.copytree(extracted, copy)
    (copy / "model.openvino.bin").unlink()
    with pytest.raises(CheckpointError, match=r"lists the openvino-fp32 path, whose model\.openvino\.bin is missing"):
        read_checkpoint(copy)


def test_without_dev_data_only_the_fp32_paths_are_gated(tiny_model_dir, small_data, tmp_path):
    """No --data: the check set is test_predictions.jsonl's texts, which carry no dev split to gate int8 and
    bf16 on; the fp32 paths still pass the parity gate."""
    from training.config import TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters({
        "task_name": "classif", "model_name": str(tiny_model_dir("bert")), "max_steps": "2",
        "per_device_train_batch_size": "8", "max_seq_length": "32", "eval_steps": "2"})
    checkpoint = train(config, small_data("classif"), tmp_path / "model").output
    built = build(checkpoint, tmp_path / "out", name="m")
    by_name: dict[str, Any] = {p.name: p for p in built.serving.paths}
    assert by_name["onnx-fp32"].passed and by_name["openvino-fp32"].passed
    for name in ("onnx-int8", "openvino-bf16"):
        assert not by_name[name].passed
    assert by_name["onnx-int8"].reason == "no dev split to gate it on: archive with --data DIR (its dev.csv)"
    # fp32 scores need labels, which test_predictions.jsonl's inputs do not carry
    assert by_name["onnx-fp32"].scores == {"metric": "f1_macro", "dev": None, "test": None}
    listed = json.loads(tarfile.open(built.tarball).extractfile("serving.json").read())["paths"]  # type: ignore[union-attr]
    assert [p["name"] for p in listed] == list(PATH_NAMES)
