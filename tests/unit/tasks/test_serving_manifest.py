"""serving.json's record (``tasks.serving_manifest``): round trip, refusals that name the field and the file, old
archives' files, and the launcher reading it out of a model.tar.gz through the same record."""
from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest

from launcher.endpoints.serverless import archive_runtime
from runtimes.checkpoint import CheckpointError, onnx_file, read_serving, write_serving
from tasks.serving_manifest import (
    DEFAULT_RUNTIME,
    SCHEMA_VERSION,
    SERVING_FILE,
    GpuEntry,
    ManifestError,
    ServingManifest,
)

ONNX = ServingManifest(
    runtime="onnx", onnx_file="model.int8.onnx", reason="ONNX answers what torch answers",
    parity={"passed": True, "max_abs_diff": 1e-7, "length_probes": 3},
    graph={"fused": True, "operators": ["Attention"]},
    graph_optimization="extended", weights="dropped: ONNX serves", quantization={"type": "int8", "passed": True},
    gpu=GpuEntry(runtime=None, reason="the weights were dropped (ONNX serves)"))
#: serving.json as archive/build.py wrote it before the file had a schema version (an ONNX archive, and a torch one)
UNVERSIONED = (
    {"runtime": "onnx", "onnx_file": "model.onnx", "graph_optimization": "extended", "reason": "ONNX answers",
     "parity": {"passed": True}, "graph": {"fused": False, "attention": "eager", "reason": "no rule"},
     "weights": "dropped: ONNX serves",
     "gpu": {"runtime": None, "reason": "the weights were dropped (ONNX serves): on a GPU host ..."}},
    {"runtime": "torch", "onnx_file": None, "reason": "runtime 'torch' was asked for (--runtime torch)",
     "gpu": {"runtime": "torch", "fp16_tolerance": 0.01, "note": "on a GPU torch serves", "check_file":
             "parity_check.jsonl", "check_records": 12, "reason": "12 records with torch's fp32 answers"}},
    {"runtime": "torch", "reason": "ONNX export not requested"},  # the oldest: no onnx_file, no gpu entry
)


def test_a_manifest_round_trips_through_its_file(tmp_path: Path) -> None:
    write_serving(tmp_path, ONNX)
    written = json.loads((tmp_path / SERVING_FILE).read_text(encoding="utf-8"))
    assert written["schema_version"] == SCHEMA_VERSION and written["gpu"]["runtime"] is None
    assert read_serving(tmp_path) == ONNX == ServingManifest.from_dict(ONNX.to_dict())
    assert onnx_file(tmp_path) == tmp_path / "model.int8.onnx"


def test_a_directory_without_the_file_serves_torch(tmp_path: Path) -> None:
    assert read_serving(tmp_path) == ServingManifest() and ServingManifest().runtime == DEFAULT_RUNTIME == "torch"
    assert onnx_file(tmp_path) is None


@pytest.mark.parametrize("old", UNVERSIONED, ids=["onnx", "torch", "oldest"])
def test_old_archives_files_without_a_version_still_read(tmp_path: Path, old: dict[str, Any]) -> None:
    (tmp_path / SERVING_FILE).write_text(json.dumps(old), encoding="utf-8")
    serving = read_serving(tmp_path)
    assert (serving.runtime, serving.onnx_file, serving.reason) == (old["runtime"], old.get("onnx_file"),
                                                                     old["reason"])
    assert serving.schema_version == SCHEMA_VERSION  # read, it is this version's
    assert serving.gpu == (GpuEntry(**old["gpu"]) if "gpu" in old else None)


@pytest.mark.parametrize("data, field", [
    ({"runtime": "torch", "fusion": "on"}, "fusion"),
    ({"runtime": "torch", "gpu": {"runtime": "torch", "reason": "r", "tolerance": 0.1}}, "gpu.tolerance"),
    ({"schema_version": SCHEMA_VERSION, "runtime": "torch", "extra": 1}, "extra"),
])
def test_an_unknown_field_is_refused_naming_it_and_the_file(tmp_path: Path, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as info:
        ServingManifest.from_dict(data)
    assert info.value.field == field and f"unknown field {field!r}" in str(info.value)
    (tmp_path / SERVING_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError) as read:
        read_serving(tmp_path)
    assert str(read.value).startswith(f"{tmp_path / SERVING_FILE} is not valid: serving manifest has an unknown "
                                      f"field {field!r} (this code reads ")


@pytest.mark.parametrize("data, field, says", [
    ({"runtime": "tensorrt"}, "runtime", "runtime must be one of ['torch', 'onnx'], got 'tensorrt'"),
    ({"runtime": "onnx"}, "onnx_file", "names no ONNX model file in the archive (onnx_file=None)"),
    ({"runtime": "onnx", "onnx_file": "../model.onnx"}, "onnx_file", "onnx_file='../model.onnx'"),
    ({"runtime": "torch", "reason": 3}, "reason", "reason must be a string, got 3"),
    ({"runtime": "torch", "parity": True}, "parity", "parity must be an object or null, got True"),
    ({"gpu": {"runtime": "torch", "reason": "r", "check_records": "12"}}, "gpu.check_records",
     "gpu.check_records must be a number, got '12'"),
    ({"gpu": ["torch"]}, "gpu", "gpu must be an object or null"),
    ({"schema_version": 3, "runtime": "torch"}, "schema_version", "schema_version 3 is not supported"),
    (["torch"], "", "must be a JSON object"),
])
def test_a_wrong_value_is_refused_naming_the_field(data: Any, field: str, says: str) -> None:
    with pytest.raises(ManifestError) as info:
        ServingManifest.from_dict(data)
    assert info.value.field == field and says in str(info.value)


def test_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / SERVING_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"^{tmp_path / SERVING_FILE} is not valid JSON: "):
        read_serving(tmp_path)


# -- the launcher reads it from a model.tar.gz on S3 ---------------------------------------------------------------
class OneObject:
    """An S3 client holding one object (boto3's get_object shape): what ``archive_runtime`` is given."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 -- boto3's parameter names
        return {"ContentLength": len(self.body), "Body": io.BytesIO(self.body)}


def tarball(serving: dict[str, Any] | None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {"model.safetensors": b"\0" * 64, **({SERVING_FILE: json.dumps(serving).encode()} if serving else {})}
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.mark.parametrize("serving, runtime", [
    (ONNX.to_dict(), "onnx"), (UNVERSIONED[0], "onnx"), (UNVERSIONED[2], "torch"), (None, DEFAULT_RUNTIME)])
def test_the_launcher_reads_the_runtime_through_the_record(serving: dict[str, Any] | None, runtime: str) -> None:
    assert archive_runtime(OneObject(tarball(serving)), "s3://bucket/model.tar.gz") == runtime


def test_the_launcher_treats_a_manifest_it_cannot_read_as_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="launcher.endpoints.serverless"):
        got = archive_runtime(OneObject(tarball({"runtime": "onnx", "onnx_file": "m.onnx", "engine": "trt"})),
                              "s3://bucket/model.tar.gz")
    assert got is None  # the largest serverless minimum then applies
    assert "could not read serving.json from s3://bucket/model.tar.gz: serving manifest has an unknown field " \
           "'engine'" in caplog.text


def test_a_path_names_the_files_it_loads():
    from tasks.serving_manifest import ServingPath, openvino_weights

    assert ServingPath(name="onnx-int8", precision="int8", file="model.int8.onnx").files == ("model.int8.onnx",)
    assert ServingPath(name="openvino-bf16", runtime="openvino", precision="bf16",
                       file="model.openvino.xml").files == ("model.openvino.xml", "model.openvino.bin")
    assert ServingPath(name="torch-fp32", runtime="torch").files == ()
    assert openvino_weights("model") == "model.bin"
