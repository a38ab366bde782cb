"""The TorchServe handler: the only module that touches TorchServe's context.

It reads the environment once, at load time (the edge: ``tasks.serving_contract``'s rules, the ones ``serve``
applied at startup), turns TorchServe's batch into plain requests, calls the service, and
sets each answer's status and content type per request index -- so one bad request of a server-side batch fails
alone (raising would fail the whole batch). Header names are matched case-insensitively, and a body may arrive
parsed (``application/json`` with TorchServe's default ``decode_input_request``) or as bytes.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Mapping

_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isdir(os.path.join(_HERE, "tasks")) and sys.path[:1] != [_HERE]:
    # inside an extracted archive: the archive's own code wins over anything installed in the environment
    sys.path.insert(0, _HERE)

from handlers.service import InferenceService, Request, Settings  # noqa: E402 -- after the sys.path line
from tasks.serving_contract import ServeConfig, WorkerContext  # noqa: E402 -- after the sys.path line

log = logging.getLogger(__name__)
_service: InferenceService | None = None
_worker = WorkerContext()


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """The service's settings from the serving environment, read by the same rules ``serve`` applied at startup."""
    config = ServeConfig.from_env(env)
    batch = config.line_per_record
    # Batch Transform and async requests are sized by bytes (MaxPayloadInMB), not records: no record limit unless
    # named
    records_named = config.is_named("max_records")
    return Settings(
        threads=config.threads(os.cpu_count() or 1),
        max_response_bytes=WorkerContext.from_env(env).max_response_bytes,
        max_records=config.max_records if records_named or not batch else 10**9,
        max_text_chars=config.max_text_chars,
        inline_record_errors=batch,
        max_batch_size=config.max_batch_size,
        max_tokens=config.max_tokens,
        precision=config.precision,
        # AssembleWith=Line appends a newline to every response: a final one of ours would be a blank line
        terminated_lines=not (config.batch_transform and config.assemble_with == "Line"),
        named=_batch_fields_named(config),
    )


#: the micro-batch settings, named alike in ``ServeConfig`` and the service's ``Settings``
BATCH_FIELDS = ("max_batch_size", "max_tokens")


def _batch_fields_named(config: ServeConfig) -> frozenset[str]:
    return frozenset(name for name in BATCH_FIELDS if config.is_named(name))


def batch_fields_named(env: Mapping[str, str]) -> frozenset[str]:
    """The micro-batch ``Settings`` fields the environment named: they win over the device's own budget
    (``handlers.service.for_device``)."""
    return _batch_fields_named(ServeConfig.from_env(env))


def check_allowed(model_dir: str, allowed_root: str | None) -> None:
    """Multi-model mode: models load only from under the directory SageMaker mounts them into."""
    if not allowed_root:
        return
    real, root = os.path.realpath(model_dir), os.path.realpath(allowed_root)
    if os.path.commonpath([real, root]) != root:
        raise PermissionError(f"model directory {model_dir} is outside {allowed_root}; refusing to load it")


def _report_load_failure(worker: WorkerContext, model_name: str, exc: BaseException) -> None:
    """Leave the reason where the serve entrypoint's watchdog looks: /ping alone would still say Healthy."""
    folder = worker.failure_dir
    if folder and os.path.isdir(folder):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name) or "model"
        with open(os.path.join(folder, f"{safe}.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{model_name}: {type(exc).__name__}: {exc}\n")


def initialize(context: Any) -> None:  # context: TorchServe's ts.context.Context
    global _service, _worker
    env = dict(os.environ)
    _worker = worker = WorkerContext.from_env(env)
    model_dir = context.system_properties.get("model_dir")
    # the GPU TorchServe assigned this worker (None on the CPU): the device is decided once, in the service
    gpu_id = context.system_properties.get("gpu_id")
    try:
        settings = settings_from_env(env)
        # before any runtime is imported: torch (and OpenMP) read it once; torch's own threads are set where torch
        # serves (runtimes.load.load_runner), so an ONNX worker never imports torch
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
        check_allowed(model_dir, worker.allowed_root)
        _service = InferenceService(model_dir, settings, gpu_id=None if gpu_id is None else int(gpu_id))
    except Exception as exc:
        log.error("model %s failed to load: %s", context.model_name, exc)
        _report_load_failure(worker, context.model_name, exc)
        raise
    log.info("worker ready: %d thread(s), runtime %s on %s, micro-batches of at most %d records and %d tokens",
             settings.threads, _service.runtime, _service.serving["device"], _service.settings.max_batch_size,
             _service.settings.max_tokens)


def _headers(context: Any, idx: int) -> dict[str, str]:
    raw = context.get_all_request_header(idx) or {}
    headers = {str(k).lower(): v for k, v in raw.items() if isinstance(v, str)}
    for name in ("body", "data"):  # the parameter's own content type, when the request header is absent
        param = raw.get(name)
        if isinstance(param, dict) and "content-type" not in headers and param.get("content-type"):
            headers["content-type"] = param["content-type"]
    return headers


class _Busy:
    """A marker file while this worker runs a batch: TorchServe reports queued requests but not running ones,
    and the serve entrypoint must not stop the server under a batch in flight (SIGTERM drain)."""

    def __init__(self, folder: str | None) -> None:
        self.path = os.path.join(folder, str(os.getpid())) if folder and os.path.isdir(folder) else None

    def __enter__(self) -> "_Busy":
        if self.path:
            open(self.path, "w").close()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path and os.path.exists(self.path):
            os.remove(self.path)


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[bytes | bytearray] | None:
    if data is None:  # TorchServe's load-time call
        initialize(context)
        return None
    with _Busy(_worker.busy_dir):
        return _handle(data, context)


def _handle(data: list[dict[str, Any]], context: Any) -> list[bytes | bytearray]:
    if _service is None:  # TorchServe does not send batches to a worker whose load failed; say so if it ever does
        raise RuntimeError("no model is loaded in this worker")
    requests = []
    for idx, item in enumerate(data):
        body = item.get("body") if item.get("body") is not None else item.get("data")
        requests.append(Request(body=body, headers=_headers(context, idx)))
    responses = _service.handle(requests)
    out: list[bytes | bytearray] = []
    for idx, response in enumerate(responses):
        context.set_response_content_type(idx, response.content_type)
        if response.status != 200:
            context.set_response_status(response.status, response.reason, idx)
        out.append(response.body)
    return out
