"""Every family trains, exports, passes the parity gate and serves what training scored -- and long inputs go as
far as the model allows, no further.

For each family's tiny random model (``tests/helpers/tiny_models.py``, its real tokenizer kind) and for NER and classif:
train a few steps, build the archive with ``archive.build.build`` (the ONNX export and its parity gate run
there), unpack ``model.tar.gz`` as SageMaker does, load the TorchServe handler on it through TorchServe's own
request plumbing (``handler_fixtures.ts_batch``), and check that the answers for the test rows are the
predictions training wrote (``test_predictions.jsonl``).
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tasks.serving_contract import VARIABLES, WorkerContext
from tests.helpers.fixtures_tokenizers import MODEL_TYPES
from tests.helpers.handler_fixtures import WireRequest, assert_close, make_context, ts_batch
from tests.helpers.tiny_models import TINY

pytestmark = pytest.mark.slow

TASKS = ("ner", "classif")
#: ONNX against torch on the same rows: what the parity gate allows, and what the served answers may differ by
TOLERANCE = 1e-5
#: the families whose tiny model serves torch, and how the reason serving.json records begins: Longformer's
#: sliding-window attention (a window of 8 here), traced at one padded length, breaks at another
SERVES_TORCH = {"longformer": "ONNX export or run failed"}
ENV_NAMES = (*(v.name for v in VARIABLES.values()), *WorkerContext._names().values(), "TS_DECODE_INPUT_REQUEST")
_BUILT: dict[tuple[str, str], tuple[Path, Path]] = {}


def _hps(task: str, model: Path, **extra: str) -> dict[str, str]:
    return {"task_name": task, "model_name": str(model), "max_steps": "2", "per_device_train_batch_size": "8",
            "max_seq_length": "32", "stride": "8", "eval_steps": "2", **extra}


def _extract(tarball: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(dst, filter="data")
    return dst


@pytest.fixture(scope="session")
def archived(tiny_model_dir, small_data, tmp_path_factory):
    """``archived(family, task)`` -> (checkpoint, extracted model.tar.gz), trained and built once per session."""
    from archive.build import build
    from training.config import TrainConfig
    from training.run import train

    def get(family: str, task: str) -> tuple[Path, Path]:
        if (family, task) not in _BUILT:
            root = tmp_path_factory.mktemp(f"e2e-{family}-{task}")
            config = TrainConfig.from_hyperparameters(_hps(task, tiny_model_dir(family)))
            checkpoint = train(config, small_data(task), root / "model").output
            built = build(checkpoint, root / "out")
            _BUILT[family, task] = checkpoint, _extract(built.tarball, root / "extracted")
        return _BUILT[family, task]

    return get


@pytest.fixture
def handler(monkeypatch):
    """``handler(model_dir)`` -> the TorchServe handler, initialised on ``model_dir`` by its load-time call."""
    import torch

    from handlers import ts_handler

    threads = torch.get_num_threads()

    def start(model_dir: Path) -> Any:
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SMTX_THREADS_PER_WORKER", "1")
        # the fp32 path that answers what training answered within TOLERANCE (the reduced precisions:
        # tests/model/test_precisions.py)
        monkeypatch.setenv("SMTX_PRECISION", "onnx-fp32")
        monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))  # restored afterwards
        assert ts_handler.handle(None, make_context(model_dir)) is None
        return ts_handler

    yield start
    ts_handler._service = None
    torch.set_num_threads(threads)


def _served(handler: Any, model_dir: Path, texts: list[str]) -> list[dict[str, Any]]:
    body = json.dumps({"data": [{"text": t} for t in texts]}).encode("utf-8")
    request = WireRequest(body, [("Content-Type", "application/json")], "application/json")
    data, context = ts_batch([request], model_dir)
    [answer] = handler.handle(data, context)
    assert context.get_response_status(0)[0] == 200, answer
    return json.loads(answer)["predictions"]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", MODEL_TYPES)
def test_family_trains_exports_and_serves_what_training_scored(archived, handler, family, task):
    checkpoint, extracted = archived(family, task)
    spec = json.loads((extracted / "task_spec.json").read_text(encoding="utf-8"))
    # the tokenizer settings training used travel with the checkpoint, so serving tokenises as training did
    assert spec["model_type"] == family and spec["add_prefix_space"] == TINY[family].tokenizer.no_prefix_space
    serving = json.loads((extracted / "serving.json").read_text(encoding="utf-8"))
    print(f"{family}-{task}: runtime {serving['runtime']}, graph {serving.get('graph')}, parity "
          f"{serving.get('parity')}, reason {serving['reason']}")
    if family in SERVES_TORCH:
        assert serving["runtime"] == "torch" and serving["reason"].startswith(SERVES_TORCH[family]), serving
        assert serving["onnx_file"] is None and list(extracted.glob("*.safetensors"))
    else:
        assert serving["runtime"] == "onnx", serving["reason"]
        figures = serving["parity"]
        assert figures["passed"] and figures["label_agreement"] == 1.0 and figures["max_abs_diff"] <= TOLERANCE
        assert (extracted / serving["onnx_file"]).is_file() and not list(extracted.glob("*.safetensors"))

    rows = [json.loads(line) for line in (checkpoint / "test_predictions.jsonl").read_text().splitlines()]
    served = handler(extracted)
    assert served._service.runtime == serving["runtime"]  # the worker runs what the archive chose
    answers = _served(served, extracted, [r["text"] for r in rows])
    assert len(answers) == len(rows) == 12
    for row, answer in zip(rows, answers):
        scored = {k: v for k, v in row.items() if k not in ("text", "gold")}
        assert_close(answer, scored, row["text"], TOLERANCE)
        if task == "ner":
            assert len(answer["pred"]) == len(row["text"].split()), "every word gets exactly one label"




# -- as long as the model allows ----------------------------------------------------------------------------------
LONG = 2048


def _long_ner_data(folder: Path, tokenizer: Any, sentences: list[tuple[str, str]]) -> tuple[Path, str]:
    """A train/dev/test set whose long record (repeated example sentences) is more than LONG tokens."""
    words: list[str] = []
    labels: list[str] = []
    while len(tokenizer([words], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]) <= LONG + 100:
        for text, tags in sentences:
            words += text.split()
            labels += tags.split()
    long_row = f"{' '.join(words)}\t{' '.join(labels)}"
    short = [f"{t}\t{g}" for t, g in sentences[:3]]
    folder.mkdir(parents=True)
    for split, rows in (("train", [long_row, *short]), ("dev", short), ("test", [long_row, *short[:1]])):
        (folder / f"{split}.csv").write_text("\n".join(["text\tlabels", *rows]) + "\n", encoding="utf-8")
    return folder, " ".join(words)


def test_modernbert_trains_at_2048_tokens_and_windows_a_longer_record(tiny_model_dir, small_data, tmp_path):
    from runtimes.torch_runtime import load_base_tokenizer, load_checkpoint
    from tasks.encode import encode
    from tasks.predict import predict
    from tasks.records import make_record
    from training.config import TrainConfig
    from training.run import train

    base = tiny_model_dir("modernbert")
    tokenizer, _ = load_base_tokenizer(base)
    examples = [tuple(line.split("\t")) for line in
                (small_data("ner") / "train.csv").read_text(encoding="utf-8").splitlines()[1:]]
    data, long_text = _long_ner_data(tmp_path / "data", tokenizer, examples)
    config = TrainConfig.from_hyperparameters(_hps("ner", base, max_seq_length=str(LONG), stride="64",
                                                   per_device_train_batch_size="2", per_device_eval_batch_size="2"))
    out = train(config, data, tmp_path / "model").output
    spec, reloaded, runner = load_checkpoint(out)
    assert spec.max_seq_length == LONG

    record = make_record("ner", False, {"text": long_text})
    features = encode(spec, reloaded, [record])
    assert len(features) >= 2 and max(len(f) for f in features) == LONG  # windowed, each window full length
    n_words = len(long_text.split())
    rows = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert rows[0]["text"] == long_text and len(rows[0]["pred"]) == len(rows[0]["proba"]) == n_words
    [again] = predict(spec, reloaded, runner, [record])
    assert again["pred"] == rows[0]["pred"] and len(again["pred"]) == n_words


def test_max_seq_length_above_the_models_limit_names_the_limit(tiny_model_dir, small_data, tmp_path):
    from training.config import ConfigError, TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters(_hps("classif", tiny_model_dir("bert"), max_seq_length="600"))
    with pytest.raises(ConfigError, match=r"max_seq_length=600 is more than .*: its longest input is 512 tokens"):
        train(config, small_data("classif"), tmp_path / "model")
    assert not (tmp_path / "model").exists() or not list((tmp_path / "model").iterdir()), "nothing half-written"
