"""The cold-start breakdown reads the right lines of a TorchServe log and subtracts the right timestamps."""
from __future__ import annotations

import datetime as dt

from bench.cold_start import archive_sizes, breakdown, log_events

T0 = dt.datetime(2026, 11, 30, 12, 0, 0).timestamp()
LOG = """\
2026-11-30 12:00:00,100 INFO serve: starting
2026-11-30T12:00:01,500 [INFO ] org.pytorch.serve.ModelServer - Torchserve version: 0.12.0
2026-11-30T12:00:02,100 [INFO ] MODEL_LOG - Listening on port: /tmp/.ts.sock.9000
2026-11-30T12:00:03,000 [INFO ] MODEL_LOG - load steps: imports 0.100 s, session 0.300 s, \
tokenizer 0.050 s
2026-11-30T12:00:03,010 [INFO ] MODEL_LOG - loaded classif model (bert, 4 labels) on onnx \
in 0.500 s (checks 0.020 s)
2026-11-30T12:00:03,020 [INFO ] MODEL_LOG - worker ready: 2 thread(s), runtime onnx
2026-11-30T12:00:03,200 [INFO ] MODEL_LOG - first batch answered in 0.012 s
"""


def test_the_breakdown_of_a_cold_start(tmp_path):
    log = tmp_path / "serve.log"
    log.write_text(LOG, encoding="utf-8")
    events = log_events(log)
    assert events["frontend_log"][1] == "Torchserve version: 0.12.0"  # our own lines have another format
    steps = breakdown(T0, T0 + 3.25, {"java": T0 + 0.9, "workers": T0 + 1.8}, events)
    assert steps == {"serve_entrypoint_s": 0.9, "jvm_start_s": 0.6, "frontend_to_worker_spawn_s": 0.3,
                     "worker_imports_s": 0.71, "checks_s": 0.02, "runtime_imports_s": 0.1, "session_s": 0.3,
                     "tokenizer_s": 0.05, "first_batch_s": 0.012, "ready_to_first_answer_s": 0.23, "total_s": 3.25}


def test_a_missing_line_leaves_its_steps_empty(tmp_path):
    log = tmp_path / "serve.log"
    log.write_text("\n".join(LOG.splitlines()[:2]) + "\n", encoding="utf-8")
    steps = breakdown(T0, T0 + 4.0, {"java": T0 + 0.9}, log_events(log))
    assert steps["jvm_start_s"] == 0.6 and steps["total_s"] == 4.0
    assert steps["worker_imports_s"] is steps["session_s"] is steps["ready_to_first_answer_s"] is None


def test_archive_sizes_compare_the_tarball_with_the_graph(tmp_path):
    store = tmp_path / "onnx"
    (store / "extracted").mkdir(parents=True)
    (store / "extracted" / "serving.json").write_text('{"runtime": "onnx", "onnx_file": "model.onnx"}')
    (store / "extracted" / "model.onnx").write_bytes(b"x" * 2**20)
    (store / "model.tar.gz").write_bytes(b"x" * 2**19)
    (store / "m.mar").write_bytes(b"x" * 2**19)
    assert archive_sizes({"onnx": store, "checkpoint": tmp_path}) == \
        {"onnx": {"tarball_mb": 0.5, "mar_mb": 0.5, "models_mb": 1.0, "tarball_over_models": 0.5,
                  "paths": {"model.onnx": 1.0}}}


def test_archive_sizes_count_every_gated_path_s_files(tmp_path):
    """An archive with paths serves from each passed path's file (an OpenVINO IR's .bin too), not a refused one."""
    import json

    store = tmp_path / "onnx"
    (store / "extracted").mkdir(parents=True)
    paths = [{"name": "onnx-fp32", "runtime": "onnx", "precision": "fp32", "file": "model.onnx", "passed": True},
             {"name": "onnx-int8", "runtime": "onnx", "precision": "int8", "file": "model.int8.onnx", "passed": False},
             {"name": "openvino-bf16", "runtime": "openvino", "precision": "bf16", "file": "model.openvino.xml",
              "passed": True}]
    (store / "extracted" / "serving.json").write_text(json.dumps(
        {"schema_version": 2, "runtime": "onnx", "onnx_file": "model.onnx", "paths": paths}))
    for name, mb in (("model.onnx", 1), ("model.openvino.xml", 0.25), ("model.openvino.bin", 1.25)):
        (store / "extracted" / name).write_bytes(b"x" * int(mb * 2**20))
    (store / "model.tar.gz").write_bytes(b"x" * 2**20)
    (store / "m.mar").write_bytes(b"x" * 2**20)
    sizes = archive_sizes({"onnx": store})["onnx"]
    assert sizes["models_mb"] == 2.5 and sizes["tarball_over_models"] == 0.4
    assert sizes["paths"] == {"model.onnx": 1.0, "model.openvino.bin": 1.25, "model.openvino.xml": 0.25}
