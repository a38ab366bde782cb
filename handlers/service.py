"""The inference service: requests in, responses out, one response per request, batch-correct by construction.

Every request of a server-side batch is decoded and validated on its own; the valid records of all of them
go through one ``tasks.predict`` call (sorted by length and micro-batched across requests), and each request
gets its own answer or its own error. One bad request never fails its neighbours.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from handlers import codecs
from handlers.errors import BadRequest, OutOfResources, PayloadTooLarge, RequestError, ServerError, is_out_of_memory
from runtimes.checkpoint import read_checkpoint
from runtimes.device import ServePlan, batch_budget
from runtimes.load import load_runner
from tasks.errors import RecordError
from tasks.fields import Record
from tasks.predict import predict
from tasks.records import make_record
from tasks.serving_contract import JSON, VARIABLES

log = logging.getLogger(__name__)
__all__ = ["InferenceService", "Request", "Response", "Settings", "for_device", "load_runner"]


@dataclass(frozen=True)
class Settings:
    """Serving limits and behaviour; the TorchServe handler builds them from ``tasks.serving_contract`` once."""

    max_records: int = VARIABLES["max_records"].default
    max_text_chars: int = VARIABLES["max_text_chars"].default
    #: Batch Transform: a bad record answers an error object on its own line instead of failing its request
    inline_record_errors: bool = False
    max_batch_size: int = VARIABLES["max_batch_size"].default
    max_tokens: int = VARIABLES["max_tokens"].default
    #: intra-op threads of the runtime (None: the runtime's default, one per core)
    threads: int | None = None
    #: SMTX_PRECISION: the CPU precision to serve (``runtimes.precision``; auto: the fastest gated one)
    precision: str = VARIABLES["precision"].default
    #: TorchServe's max_response_size: a larger answer would kill the worker (the frontend drops the frame)
    max_response_bytes: int | None = None
    #: jsonlines answers end with a newline; not under Batch Transform's AssembleWith=Line, which adds one itself
    terminated_lines: bool = True
    #: records and characters sent to the model per slice of a server-side batch (see InferenceService._slices)
    stream_records: int = 4096
    stream_chars: int = 2_000_000
    #: the fields above the environment named: the device's defaults (``for_device``) never replace them
    named: frozenset[str] = frozenset()


@dataclass
class Request:
    body: Any
    headers: dict[str, str]  # lower-cased names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes | bytearray
    content_type: str
    reason: str = "OK"


@dataclass
class _Parsed:
    answer_type: str
    records: list[Record | RequestError]
    all_scores: list[bool]


def for_device(settings: Settings, plan: ServePlan) -> Settings:
    """``settings`` with the device's micro-batch budget (``runtimes.device.batch_budget``: on a GPU, bounded by
    tokens rather than records) wherever the environment did not name the value itself (``settings.named``)."""
    budget = batch_budget(plan)
    if budget is None:
        return settings
    size, tokens = budget
    named = settings.named
    return replace(settings, max_batch_size=settings.max_batch_size if "max_batch_size" in named else size,
                   max_tokens=settings.max_tokens if "max_tokens" in named else tokens)


class InferenceService:
    def __init__(self, model_dir: str | Path, settings: Settings = Settings(), gpu_id: int | None = None) -> None:
        """``gpu_id``: the GPU TorchServe assigned this worker (None: the CPU); ``runtimes.device`` decides the
        rest once, here: ``serving`` says what serves, where, in which precision and why."""
        self.model_dir = Path(model_dir)
        # the same checks as make-archive and single-model serve: a multi-model load gets no other gate
        started = time.perf_counter()
        # the spec with its task's row and family, resolved once: every request is encoded and decoded with them
        self.task = read_checkpoint(self.model_dir)
        self.spec = self.task.spec
        checked = time.perf_counter()
        self.tokenizer, self.runner, plan = load_runner(self.model_dir, self.task, settings.threads, gpu_id,
                                                          settings.precision)
        self.runtime: str = plan.runtime
        self.serving: dict[str, Any] = plan.to_dict()
        self.settings = for_device(settings, plan)
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
        for name in self.task.kind.inputs:  # text, and text_pair for a pair task
            text = raw.get(name)
            if isinstance(text, str) and len(text) > self.settings.max_text_chars:
                raise PayloadTooLarge(f"{name} has {len(text)} characters; the limit is "
                                      f"{self.settings.max_text_chars}", record=index)
        try:
            return make_record(self.task.kind, self.spec.use_bbox, raw)
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
        answers = _Answers(parsed, self.settings.terminated_lines)
        todo = [(i, j, r) for i, p in answers.requests.items() for j, r in enumerate(p.records)
                if isinstance(r, Record)]
        try:
            for chunk in self._slices(todo):
                records = [record for _, _, record in chunk]
                preds = predict(self.task, self.tokenizer, self.runner, records, all_scores=True,
                                max_batch_size=self.settings.max_batch_size, max_tokens=self.settings.max_tokens)
                for (i, j, _), pred in zip(chunk, preds):
                    answers.put(i, j, pred)
        except Exception as exc:  # broad on purpose: the model failing is our fault, never the caller's
            log.exception("prediction failed")
            failed: RequestError = OutOfResources("out of memory on this batch") if is_out_of_memory(exc) \
                else ServerError("prediction failed; see the server log")
            # only the requests that sent records to the model failed; all-invalid ones keep their answers
            for i in {i for i, _, _ in todo}:
                parsed[i] = failed
        return [self._respond(p if isinstance(p, RequestError) else answers.finish(i), requests[i])
                for i, p in enumerate(parsed)]

    def _slices(self, todo: list[tuple[int, int, Record]]) -> Iterator[list[tuple[int, int, Record]]]:
        """The records in slices of at most ``stream_records`` records and ``stream_chars`` characters.

        The tokenizer's memory grows with the characters it is given (about 110 bytes a character for long texts,
        most of it the truncated tail) and is kept for reuse: slicing bounds what a huge request (asynchronous
        inference, hundreds of MB) costs to what one slice costs."""
        chunk: list[tuple[int, int, Record]] = []
        chars = 0
        for i, j, record in todo:
            size = sum(len(text) for text in record.inputs().values())
            if chunk and (len(chunk) >= self.settings.stream_records or chars + size > self.settings.stream_chars):
                yield chunk
                chunk, chars = [], 0
            chunk.append((i, j, record))
            chars += size
        if chunk:
            yield chunk

    def _respond(self, outcome: "RequestError | Response", request: Request) -> Response:
        if isinstance(outcome, Response):
            limit = self.settings.max_response_bytes
            if limit is None or len(outcome.body) <= limit:
                return outcome
            outcome = PayloadTooLarge(f"the answer would be {len(outcome.body)} bytes, over the server's response "
                                      f"limit of {limit}; send fewer or shorter records per request")
        media = _error_media(request)
        return Response(outcome.status, codecs.encode_error(outcome.body(), media, self.settings.terminated_lines),
                        media, outcome.reason)


class _Answers:
    """Each request's answer, encoded record by record in input order as predictions arrive (an invalid record's
    error in its place); a request whose answer cannot be encoded becomes a ServerError."""

    def __init__(self, parsed: list[_Parsed | RequestError], terminated: bool) -> None:
        #: the requests that parsed, by index, with their records as parsed (the others answer their error)
        self.requests = {i: p for i, p in enumerate(parsed) if isinstance(p, _Parsed)}
        self.writers = {i: codecs.AnswerWriter(p.answer_type, terminated) for i, p in self.requests.items()}
        #: per request, how many of its records are answered (in input order, errors in their place)
        self.written = {i: 0 for i in self.writers}
        self.broken: dict[int, RequestError] = {}

    def put(self, i: int, j: int, pred: dict[str, Any]) -> None:
        parsed = self.requests[i]
        self._errors_before(i, j)
        if not parsed.all_scores[j]:
            pred = {k: v for k, v in pred.items() if k != "scores"}
        self._add(i, pred)
        self.written[i] = j + 1

    def finish(self, i: int) -> "Response | RequestError":
        parsed = self.requests[i]
        self._errors_before(i, len(parsed.records))
        if i in self.broken:
            return self.broken[i]
        return Response(200, self.writers[i].finish(), parsed.answer_type)

    def _errors_before(self, i: int, j: int) -> None:
        parsed = self.requests[i]
        for k in range(self.written[i], j):
            record = parsed.records[k]
            if isinstance(record, RequestError):
                self._add(i, record.body())
        self.written[i] = max(self.written[i], j)

    def _add(self, i: int, item: dict[str, Any]) -> None:
        if i in self.broken:
            return
        try:
            self.writers[i].add(item)
        except ValueError:  # e.g. NaN from a broken model: the answer cannot be JSON, and that is ours
            log.exception("answer could not be encoded")
            self.broken[i] = ServerError("the model produced an answer that cannot be encoded")


def _error_media(request: Request) -> str:
    """Errors answer in the request's format when it is known and acceptable, JSON otherwise."""
    try:
        return codecs.negotiate(request.header("accept"), codecs.media_type(request.header("content-type")))
    except RequestError:
        return JSON
