"""Real checkpoints and TorchServe's own request plumbing for the handler and archive tests.

``trained(task)`` trains the tiny BERT of ``tests/helpers/tiny_models.py`` for two steps (a few seconds) and returns the
checkpoint directory that training wrote -- the same contract serving reads. Test modules import the fixture
from here; pytest registers an imported fixture once per module, so checkpoints are cached at module level and
trained once per session.

``ts_batch`` builds what TorchServe's backend hands to ``handle(data, context)``: the frontend's wire frame is
encoded byte for byte and read back by ``ts.protocol.otf_message_handler`` (which decodes ``application/json``
bodies itself unless ``TS_DECODE_INPUT_REQUEST=false``), then ``ts.service.Service.retrieve_data_for_inference``
builds the per-request ``RequestProcessor`` objects and the input batch, exactly as a worker does.
"""
from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_CHECKPOINTS: dict[str, Path] = {}


def train_tiny(task: str, base: Path, data: Path, out: Path) -> Path:
    from training.config import TrainConfig
    from training.run import train

    config = TrainConfig.from_hyperparameters({
        "task_name": task, "model_name": str(base), "max_steps": "2", "per_device_train_batch_size": "8",
        "max_seq_length": "32", "stride": "8", "eval_steps": "2"})
    return train(config, data, out).output


@pytest.fixture(scope="session")
def trained(tiny_model_dir, small_data, tmp_path_factory):
    """``trained(task)`` -> a real checkpoint of the tiny BERT for ``task`` (trained once per session)."""

    def get(task: str) -> Path:
        if task not in _CHECKPOINTS:
            root = tmp_path_factory.mktemp(f"trained-{task}")
            _CHECKPOINTS[task] = train_tiny(task, tiny_model_dir("bert"), small_data(task), root / "model")
        return _CHECKPOINTS[task]

    return get


# -- TorchServe's side of a request ------------------------------------------------------------------------------
@dataclass
class WireRequest:
    """One HTTP request as TorchServe's frontend forwards it: headers with their original casing, one body."""

    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: the ``body`` parameter's own content type (the frontend copies the request's Content-Type here)
    param_type: str = ""


def _pack(value: bytes) -> bytes:
    return struct.pack("!i", len(value)) + value


def encode_frame(requests: list[WireRequest]) -> bytes:
    """The frontend's predict frame (without the command byte), as ``_retrieve_inference_msg`` reads it."""
    out = bytearray()
    for i, request in enumerate(requests):
        out += _pack(f"req-{i}".encode())
        for name, value in request.headers:
            out += _pack(name.encode()) + _pack(value.encode())
        out += struct.pack("!i", -1)
        out += _pack(b"body") + _pack(request.param_type.encode()) + _pack(request.body)
        out += struct.pack("!i", -1)
    out += struct.pack("!i", -1)
    return bytes(out)


class _Socket:
    """A connection that yields the frame's bytes (TorchServe reads its socket with ``recv`` only)."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def recv(self, n: int) -> bytes:
        return self._buffer.read(n)


def ts_batch(requests: list[WireRequest], model_dir: Path | None = None) -> tuple[list[Any], Any]:
    """``(data, context)`` for ``handle``: built by TorchServe's own message reader and ``Service``."""
    from ts.protocol.otf_message_handler import _retrieve_inference_msg
    from ts.service import Service

    batch = _retrieve_inference_msg(_Socket(encode_frame(requests)))
    processors, data, request_ids = Service.retrieve_data_for_inference(batch)
    context = make_context(model_dir)
    context.request_ids = request_ids
    context.request_processor = processors
    return data, context


def make_context(model_dir: Path | None) -> Any:
    from ts.context import Context

    return Context("model", str(model_dir) if model_dir else None, {"model": {"handler": "ts_handler.py"}},
                   8, None, "0.12.0")


def read_response_frame(frame: bytes) -> list[dict[str, Any]]:
    """Per-request (id, content type, status, phrase, headers, body) from ``create_predict_response``'s frame."""
    buf = io.BytesIO(frame)

    def i32() -> int:
        return struct.unpack("!i", buf.read(4))[0]

    def blob() -> bytes:
        return buf.read(i32())

    i32(), blob()  # the batch's code and message
    out = []
    while True:
        length = i32()
        if length == -1:
            return out
        request_id = buf.read(length).decode()
        content_type = blob().decode()
        status, phrase = i32(), blob().decode()
        headers = {blob().decode(): blob().decode() for _ in range(i32())}
        out.append({"id": request_id, "content_type": content_type, "status": status, "phrase": phrase,
                    "headers": headers, "body": blob()})


def assert_close(actual: Any, wanted: Any, path: str = "", tolerance: float = 1e-5) -> None:
    """Equal structure, labels and words; floats within ``tolerance`` (requests micro-batched with other padding,
    or ONNX Runtime against torch)."""
    if isinstance(wanted, float):
        assert isinstance(actual, float) and math.isclose(actual, wanted, abs_tol=tolerance), \
            f"{path}: {actual} != {wanted}"
    elif isinstance(wanted, dict):
        assert isinstance(actual, dict) and actual.keys() == wanted.keys(), f"{path}: {actual} != {wanted}"
        for key in wanted:
            assert_close(actual[key], wanted[key], f"{path}.{key}", tolerance)
    elif isinstance(wanted, list):
        assert isinstance(actual, list) and len(actual) == len(wanted), f"{path}: {actual} != {wanted}"
        for i, (a, w) in enumerate(zip(actual, wanted)):
            assert_close(a, w, f"{path}[{i}]", tolerance)
    else:
        assert actual == wanted, f"{path}: {actual!r} != {wanted!r}"
