"""An ONNX archive serves without torch and carries only what it serves; the load-time checks still guard it."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from archive.build import Built, RuntimeOptions, build
from handlers.service import InferenceService, Request, Settings
from runtimes.checkpoint import CheckpointError, check_checkpoint
from runtimes.parity import CHECK_FILE
from runtimes.tokenizer import SPECIAL_IDS_FILE, ServingTokenizer
from tests.helpers.handler_fixtures import trained  # noqa: F401 -- pytest fixtures

pytestmark = pytest.mark.slow  # trains a tiny model and exports it (seconds)
BODY = b'{"data": [{"text": "the team won the final match", "all_scores": true}, {"text": "sales grew"}]}'
JSON = {"content-type": "application/json"}

#: a fresh interpreter loads the extracted archive through the TorchServe handler, as a worker does, answers one
#: request, and says which heavy modules were imported. The context has what ts_handler reads and sets: TorchServe's
#: own ts.context cannot stand in, because ts.protocol imports torch (see entrypoints/worker_site).
HANDLER_LOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import ts_handler

class Context:
    model_name = "lean"
    system_properties = {"model_dir": sys.argv[1], "gpu_id": json.loads(sys.argv[3])}
    def __init__(self): self.types = {}
    def get_all_request_header(self, idx): return {"Content-Type": "application/json"}
    def set_response_content_type(self, idx, value): self.types[idx] = value
    def set_response_status(self, code, phrase, idx): raise AssertionError((code, phrase))

context = Context()
ts_handler.handle(None, context)
out = ts_handler.handle([{"body": sys.argv[2].encode()}], context)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "archive", "training"))
print(json.dumps({"answer": json.loads(out[0]), "runtime": ts_handler._service.runtime, "heavy": heavy,
                  "tokenizer": type(ts_handler._service.tokenizer).__name__, "serving": ts_handler._service.serving}))
"""


def extract(built: Built, dst: Path) -> Path:
    dst.mkdir(parents=True)
    with tarfile.open(built.tarball) as tf:
        tf.extractall(dst, filter="data")
    return dst


@pytest.fixture(scope="module")
def lean(trained, tmp_path_factory):
    """(checkpoint, extracted ONNX archive built with the defaults)."""
    checkpoint = trained("classif")
    root = tmp_path_factory.mktemp("lean")
    return checkpoint, extract(build(checkpoint, root / "out"), root / "extracted")


@pytest.fixture
def copy(lean, tmp_path):
    return Path(shutil.copytree(lean[1], tmp_path / "archive"))


def answer(path: Path) -> list[dict]:
    response = InferenceService(path).handle([Request(BODY, JSON)])[0]
    assert response.status == 200, response.body
    return json.loads(response.body)["predictions"]


def test_an_onnx_archive_carries_the_graph_and_the_serving_tokenizer_only(lean):
    checkpoint, extracted = lean
    serving = json.loads((extracted / "serving.json").read_text(encoding="utf-8"))
    assert serving["runtime"] == "onnx" and serving["weights"] == "dropped: ONNX serves"
    assert serving["graph_optimization"] == "extended"
    files = {p.name for p in extracted.iterdir() if p.is_file()}
    assert {"model.onnx", "tokenizer.json", SPECIAL_IDS_FILE, "config.json", "task_spec.json"} <= files
    assert not files & {"model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
    # no weights, no GPU: no check set for the fp16 gate either, and serving.json says so
    assert CHECK_FILE not in files and serving["gpu"]["runtime"] is None
    assert "--keep-weights" in serving["gpu"]["reason"]
    assert (checkpoint / "model.safetensors").is_file()  # the checkpoint itself is untouched
    assert check_checkpoint(extracted) == check_checkpoint(checkpoint)


@pytest.mark.parametrize("gpu_id", [None, 0])
def test_the_worker_imports_neither_torch_nor_transformers_and_answers_what_torch_answers(lean, tmp_path, gpu_id):
    """With or without a GPU assigned: an archive without weights serves ONNX on the CPU, and asks torch nothing."""
    checkpoint, extracted = lean
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", HANDLER_LOAD, str(extracted), BODY.decode(), json.dumps(gpu_id)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["runtime"] == "onnx" and result["tokenizer"] == "ServingTokenizer"
    serving = result["serving"]
    assert (serving["device"], serving["runtime"], serving["precision"]) == ("cpu", "onnx", "fp32")
    assert ("no GPU" if gpu_id is None else "--keep-weights") in serving["reason"]
    expected = answer(checkpoint)  # the training checkpoint: torch and transformers' tokenizer
    got = result["answer"]["predictions"]
    assert [g["pred"] for g in got] == [e["pred"] for e in expected]
    assert got[0]["scores"] == pytest.approx(expected[0]["scores"], abs=1e-5)


def test_keep_weights_keeps_the_way_back_to_torch(lean, tmp_path):
    checkpoint, _ = lean
    extracted = extract(build(checkpoint, tmp_path / "out", runtime=RuntimeOptions(keep_weights=True)),
                        tmp_path / "extracted")
    serving = json.loads((extracted / "serving.json").read_text())
    assert serving["weights"] == "kept (--keep-weights)"
    assert serving["gpu"]["runtime"] == "torch" and serving["gpu"]["check_file"] == CHECK_FILE
    for name in ("model.safetensors", "tokenizer_config.json", "model.onnx", SPECIAL_IDS_FILE, CHECK_FILE):
        assert (extracted / name).is_file(), name
    assert InferenceService(extracted, Settings(precision="onnx-fp32")).runtime == "onnx"


def test_pickled_weights_are_refused_in_a_weightless_archive(copy):
    (copy / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match=r"holds pickled weights \['pytorch_model.bin'\]"):
        check_checkpoint(copy)


def test_a_missing_graph_is_refused(copy):
    (copy / "model.onnx").unlink()
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(copy)
    assert str(info.value) == f"{copy / 'serving.json'} names the ONNX model model.onnx, which is missing"


def test_a_weightless_archive_is_never_served_with_torch(copy):
    serving = json.loads((copy / "serving.json").read_text())
    (copy / "serving.json").write_text(json.dumps({**serving, "runtime": "torch", "onnx_file": None}))
    with pytest.raises(CheckpointError, match="has no .safetensors weights"):
        InferenceService(copy)


def test_a_head_that_differs_from_the_graph_is_refused_at_load(copy):
    """config.json and the spec agree on five labels, but the graph gives four: only the graph can tell."""
    spec = json.loads((copy / "task_spec.json").read_text())
    config = json.loads((copy / "config.json").read_text())
    labels = [*spec["labels"], "weather"]
    (copy / "task_spec.json").write_text(json.dumps({**spec, "labels": labels}))
    config["id2label"] = {str(i): name for i, name in enumerate(labels)}
    (copy / "config.json").write_text(json.dumps(config))
    check_checkpoint(copy)
    with pytest.raises(CheckpointError) as info:
        InferenceService(copy, Settings(precision="onnx-fp32"))
    assert str(info.value) == f"the ONNX model model.onnx gives 4 outputs but the task spec needs 5 ({copy})"
    # OpenVINO's model is checked the same way
    with pytest.raises(CheckpointError) as info:
        InferenceService(copy, Settings(precision="openvino-fp32"))
    assert str(info.value) == (f"the OpenVINO model model.openvino.xml gives 4 outputs but the task spec needs 5 "
                               f"({copy})")


def test_an_archive_without_the_serving_tokenizer_falls_back_to_transformers_and_says_so(lean, copy, caplog):
    checkpoint, _ = lean
    (copy / SPECIAL_IDS_FILE).unlink()
    for name in ("tokenizer_config.json", "tokenizer.json"):  # as an archive built before the serving tokenizer
        shutil.copy2(checkpoint / name, copy / name)
    with caplog.at_level(logging.WARNING, logger="runtimes.tokenizer"):
        service = InferenceService(copy, Settings(precision="onnx-fp32"))
    assert not isinstance(service.tokenizer, ServingTokenizer) and service.runtime == "onnx"
    assert f"has no {SPECIAL_IDS_FILE}" in caplog.text and "imports torch" in caplog.text
    assert [p["pred"] for p in answer(copy)] == [p["pred"] for p in answer(checkpoint)]


def _mapped_libraries(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps", encoding="utf-8") as fh:
        return {Path(line.split()[-1]).name for line in fh if "/" in line}


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads /proc/<pid>/maps (Linux)")
@pytest.mark.parametrize(("path", "library"), [("onnx-fp32", "onnxruntime"), ("openvino-fp32", "openvino")])
def test_a_real_torchserve_worker_of_an_onnx_archive_never_loads_torch(lean, tmp_path, monkeypatch, path, library):
    """TorchServe's own worker imports torch (ts.protocol); entrypoints/worker_site defers it, and nothing of ours
    imports it: the worker process maps no libtorch, and still answers, on ONNX Runtime and on OpenVINO. The worker
    writes none of TorchServe's per-request lines (entrypoints/worker_site: its receipt stamp and metric lines),
    while its own log lines still reach the frontend's log."""
    from bench.processes import processes
    from tests.helpers.serving_fixtures import http, start_server

    checkpoint, _ = lean
    built = build(checkpoint, tmp_path / "store", name="lean")
    monkeypatch.setenv("SMTX_PRECISION", path)
    server = start_server(built.mar.parent, tmp_path / "work", ["lean=lean.mar"], tmp_path / "ts.log")
    try:
        server.wait_ready("lean", timeout=180)
        for _ in range(3):
            status, _, body = http("POST", f"{server.config.inference_address}/predictions/lean", BODY, JSON)
            assert status == 200, body
        workers = processes(server.process.pid)["workers"]
        assert len(workers) == 1
        libraries = _mapped_libraries(workers[0].pid)
        assert any(library in n for n in libraries), sorted(libraries)
        assert not [n for n in libraries if "torch" in n], sorted(n for n in libraries if "torch" in n)
    finally:
        server.stop()
    log = (tmp_path / "ts.log").read_text(errors="replace")
    runtime, precision = path.split("-")
    assert f"with {runtime} {precision}: " in log  # the worker's own lines still arrive
    assert "Backend received inference at" not in log and "HandlerTime" not in log and "PredictionTime" not in log
