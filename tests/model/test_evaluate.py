"""entrypoints evaluate, the pipeline's evaluation step, on the host: a fake /opt/ml/processing tree with a real
training run's model.tar.gz and data folder. Its test scores are training's own (the same load, decode and
scorer), written where the pipeline's condition reads them (``test.<score>`` in evaluation.json)."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from entrypoints.evaluate import main
from launcher import pipeline
from training.config import TrainConfig
from training.run import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, small_data) -> tuple[Path, Path]:
    data = small_data("classif")
    hps = {"task_name": "classif", "model_name": str(tiny_model_dir("bert")), "max_steps": "3",
           "per_device_train_batch_size": "8", "max_seq_length": "32", "stride": "8"}
    out = train(TrainConfig.from_hyperparameters(hps), data, tmp_path_factory.mktemp("model") / "model").output
    assert out is not None
    return out, data


def _processing_tree(base: Path, model: Path, data: Path) -> Path:
    (base / "model").mkdir(parents=True)
    with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as archive:  # as SageMaker packs /opt/ml/model
        for path in sorted(model.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(model)), recursive=False)
    (base / "data").symlink_to(data)
    return base


def test_evaluate_writes_the_test_scores_training_reported(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = trained
    base = _processing_tree(tmp_path / "processing", model, data)
    assert main([], env={"SMTX_PROCESSING_DIR": str(base)}) == 0
    written = json.loads((base / "evaluation" / pipeline.EVALUATION_FILE).read_text())
    reported = json.loads((model / "metrics.json").read_text())["test"]
    assert written["records"] == 12
    for name in ("accuracy", "f1_macro", "f1_weighted"):
        assert written["test"][name] == pytest.approx(reported[name], abs=1e-9), name


def test_an_archive_with_a_link_out_of_it_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    base = tmp_path / "processing"
    (base / "model").mkdir(parents=True)
    with tarfile.open(base / "model" / "model.tar.gz", "w:gz") as archive:
        link = tarfile.TarInfo("config.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    (base / "data").mkdir()
    assert main([], env={"SMTX_PROCESSING_DIR": str(base)}) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "member 'config.json' is a link or special file" in err
