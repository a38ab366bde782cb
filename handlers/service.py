"""The inference service: requests in, responses out, one response per request, batch-correct by construction.

Every request of a server-side batch is decoded and validated on its own; the valid records of all of them
go through one ``tasks.predict`` call (sorted by length and micro-batched across requests), and each request
gets its own answer or its own error. One bad request never fails its neighbours.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from handlers import codecs
from handlers.environment import VARIABLES
from handlers.errors import BadRequest, OutOfResources, PayloadTooLarge, RequestError, ServerError
from runtimes.checkpoint import SERVING_FILE, check_checkpoint, check_output_width, onnx_file, read_serving
from tasks.errors import RecordError
from tasks.predict import predict
from tasks.records import Record, make_record
from tasks.spec import TaskSpec

log = logging.getLogger(__name__)
__all__ = ["SERVING_FILE", "InferenceService", "Request", "Response", "Settings", "load_runner"]


@dataclass(frozen=True)
class Settings:
    """Serving limits and behaviour; the TorchServe handler builds them from ``handlers.environment`` once."""

    max_records: int = VARIABLES["max_records"].default
    max_text_chars: int = VARIABLES["max_text_chars"].default
    #: Batch Transform: a bad record answers an error object on its own line instead of failing its request
    inline_record_errors: bool = False
    max_batch_size: int = VARIABLES["micro_batch_size"].default
    max_tokens: int = VARIABLES["max_batch_tokens"].default
    #: intra-op threads of the runtime (None: the runtime's default, one per core)
    threads: int | None = None
    #: TorchServe's max_response_size: a larger answer would kill the worker (the frontend drops the frame)
    max_response_bytes: int | None = None
    #: jsonlines answers end with a newline; not under Batch Transform's AssembleWith=Line, which adds one itself
    terminated_lines: bool = True


@dataclass
class Request:
    body: Any
    headers: dict[str, str]  # lower-cased names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    reason: str = "OK"


@dataclass
class _Parsed:
    answer_type: str
    records: list[Record | RequestError]
    all_scores: list[bool]


def load_runner(model_dir: Path, spec: TaskSpec, threads: int | None = None) -> tuple[Any, Callable, str]:
    """Tokenizer, runner and runtime name as the archive's serving.json says (torch when absent).

    The ONNX path imports tokenizers, onnxruntime and numpy only: never torch or transformers, which cost a worker
    about half a gigabyte and seconds of start-up for a model it does not run (tests/test_lean_serving.py).
    ``threads`` sets torch's intra-op threads only where torch serves (None: leave the process's setting).
    """
    serving = read_serving(model_dir)
    graph = onnx_file(model_dir, serving)
    if graph is not None:
        started = time.perf_counter()
        from runtimes.onnx_runtime import OnnxRunner
        from runtimes.tokenizer import load_serving_tokenizer

        imported = time.perf_counter()
        runner = OnnxRunner(graph, intra_op_threads=threads, optimized=serving.get("graph_optimization"))
        check_output_width(runner.output_width, spec, graph)
        session = time.perf_counter()
        tokenizer = load_serving_tokenizer(model_dir, spec.model_type)
        # the cold-start benchmark (bench/cold_start.py) reads these figures from the log
        log.info("load steps: imports %.3f s, session %.3f s, tokenizer %.3f s", imported - started,
                 session - imported, time.perf_counter() - session)
        return tokenizer, runner, "onnx"
    started = time.perf_counter()
    from runtimes.torch_runtime import load_checkpoint, set_threads

    if threads is not None:
        set_threads(threads)
    _, tokenizer, runner = load_checkpoint(model_dir, spec)
    log.info("load steps: imports and model %.3f s", time.perf_counter() - started)
    return tokenizer, runner, "torch"


class InferenceService:
    def __init__(self, model_dir: str | Path, settings: Settings = Settings()) -> None:
        self.model_dir = Path(model_dir)
        self.settings = settings
        # the same checks as make-archive and single-model serve: a multi-model load gets no other gate
        started = time.perf_counter()
        self.spec = check_checkpoint(self.model_dir)
        checked = time.perf_counter()
        self.tokenizer, self.runner, self.runtime = load_runner(self.model_dir, self.spec, settings.threads)
        log.info("loaded %s model (%s, %d labels) on %s in %.3f s (checks %.3f s)", self.spec.task,
                 self.spec.model_type, len(self.spec.labels), self.runtime, time.perf_counter() - started,
                 checked - started)
        self._answered = False  # the first batch's time is logged: the last step of a cold start

    # -- one request -------------------------------------------------------------------------------------------
    def _record(self, index: int, raw: Any) -> Record:
        if isinstance(raw, codecs.LineError):
            raise BadRequest(raw.message, record=index)
        if not isinstance(raw, dict):
            raise BadRequest(f"a record must be a JSON object with 'text', got {type(raw).__name__}", record=index)
        text = raw.get("text")
        if isinstance(text, str) and len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(f"text has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                                  record=index)
        try:
            return make_record(self.spec.task, self.spec.use_bbox, text, raw.get("bbox"))
        except RecordError as exc:
            raise BadRequest(exc.message, record=index) from None

    def _parse(self, request: Request) -> _Parsed:
        request_type = codecs.media_type(request.header("content-type"))
        answer_type = codecs.negotiate(request.header("accept"), request_type)
        raws = codecs.DECODERS[request_type](request.body)
        if not raws:
            raise BadRequest("no records: send at least one {\"text\": ...}")
        if len(raws) > self.settings.max_records:
            raise PayloadTooLarge(f"{len(raws)} records; the limit is {self.settings.max_records} per request")
        records: list[Record | RequestError] = []
        for index, raw in enumerate(raws):
            try:
                records.append(self._record(index, raw))
            except RequestError as exc:
                if not self.settings.inline_record_errors:
                    raise
                records.append(exc)
        flags = [isinstance(r, dict) and r.get("all_scores") is True for r in raws]
        return _Parsed(answer_type, records, flags)

    # -- a server-side batch -----------------------------------------------------------------------------------
    def handle(self, requests: list[Request]) -> list[Response]:
        started = time.perf_counter()
        responses = self._handle(requests)
        if not self._answered:
            self._answered = True
            log.info("first batch answered in %.3f s", time.perf_counter() - started)
        return responses

    def _handle(self, requests: list[Request]) -> list[Response]:
        parsed: list[_Parsed | RequestError] = []
        for request in requests:
            try:
                parsed.append(self._parse(request))
            except RequestError as exc:
                parsed.append(exc)
        todo = [(i, j, r) for i, p in enumerate(parsed) if isinstance(p, _Parsed)
                for j, r in enumerate(p.records) if isinstance(r, Record)]
        try:
            preds = predict(self.spec, self.tokenizer, self.runner, [r for _, _, r in todo], all_scores=True,
                            max_batch_size=self.settings.max_batch_size, max_tokens=self.settings.max_tokens)
        except Exception as exc:  # noqa: BLE001 -- the model failing is our fault, never the caller's
            log.exception("prediction failed")
            failed: RequestError = OutOfResources("out of memory on this batch") if isinstance(exc, MemoryError) \
                else ServerError("prediction failed; see the server log")
            # only the requests that sent records to the model failed; all-invalid ones keep their answers
            with_records = {i for i, _, _ in todo}
            parsed = [failed if i in with_records else p for i, p in enumerate(parsed)]
            preds = []
        answers: dict[tuple[int, int], dict] = {(i, j): pred for (i, j, _), pred in zip(todo, preds)}
        return [self._respond(i, p, answers, requests[i]) for i, p in enumerate(parsed)]

    def _respond(self, i: int, p: _Parsed | RequestError, answers: dict, request: Request) -> Response:
        try:
            response = self._encode(i, p, answers, request)
        except ValueError:  # e.g. NaN from a broken model: the answer cannot be JSON, and that is ours
            log.exception("answer could not be encoded")
            return self._encode(i, ServerError("the model produced an answer that cannot be encoded"), answers,
                                request)
        limit = self.settings.max_response_bytes
        if limit is not None and len(response.body) > limit:
            too_large = PayloadTooLarge(f"the answer would be {len(response.body)} bytes, over the server's response "
                                        f"limit of {limit}; send fewer or shorter records per request")
            return self._encode(i, too_large, answers, request)
        return response

    def _encode(self, i: int, p: _Parsed | RequestError, answers: dict, request: Request) -> Response:
        if isinstance(p, RequestError):
            media = _error_media(request)
            return Response(p.status, codecs.encode_error(p.body(), media, self.settings.terminated_lines), media,
                            p.reason)
        items = []
        for j, record in enumerate(p.records):
            if isinstance(record, RequestError):
                items.append(record.body())
                continue
            pred = answers[(i, j)]
            if not p.all_scores[j]:
                pred = {k: v for k, v in pred.items() if k != "scores"}
            items.append(pred)
        return Response(200, codecs.ENCODERS[p.answer_type](items, self.settings.terminated_lines), p.answer_type)


def _error_media(request: Request) -> str:
    """Errors answer in the request's format when it is known and acceptable, JSON otherwise."""
    try:
        return codecs.negotiate(request.header("accept"), codecs.media_type(request.header("content-type")))
    except RequestError:
        return codecs.JSON
