"""The inference service and the TorchServe handler on real checkpoints, with TorchServe's own request plumbing.

Checkpoints are trained for two steps from the tiny BERT (``handler_fixtures.trained``). Handler tests go through
``ts.protocol.otf_message_handler`` and ``ts.service.Service.retrieve_data_for_inference`` with a real
``ts.context.Context``, so headers keep the casing the client sent and ``application/json`` bodies arrive already
parsed, as in a worker. The only fault injection is replacing the service's ``runner`` with one that fails.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import pytest
from ts.protocol.otf_message_handler import create_predict_response

from handlers import codecs
from handlers.service import InferenceService, Request, Settings
from tasks.kinds.ner import entities
from tasks.predict import predict
from tasks.records import make_record
from tasks.serving_contract import JSON, JSONLINES, VARIABLES, WorkerContext
from tests.helpers.handler_fixtures import (  # noqa: F401 -- pytest fixtures
    WireRequest,
    assert_close,
    make_context,
    read_response_frame,
    trained,
    ts_batch,
)

#: every request text carries this word; no log line may
MARKER = "quokka"
TEXTS = [
    f"the {MARKER} team won the final match",
    f"alice martin joined acme corp last year and the {MARKER} board met in paris on monday",
    f"{MARKER} sales grew",
    f"hugo silva said the weather in oslo was terrible , nobody expected the {MARKER} meeting to end so early .",
]
SUPPORTED = "['application/json', 'application/jsonlines']"
OUR_LOGGERS = ("handlers", "tasks", "runtimes", "ts")
ENV_NAMES = (*(v.name for v in VARIABLES.values()), *WorkerContext._names().values(),
             "TS_DECODE_INPUT_REQUEST")


# -- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_request_text_in_logs(caplog):
    """Request bodies are never logged, whatever the outcome (tracebacks included)."""
    caplog.set_level(logging.INFO)  # root at DEBUG would make torch and transformers slow down every call
    for name in OUR_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.get_records("call")).lower()
    assert MARKER not in logged, "request text was logged"


@pytest.fixture(scope="module")
def ckpt(trained):
    return {"classif": trained("classif"), "ner": trained("ner")}


@pytest.fixture(scope="module")
def services(ckpt):
    return {task: InferenceService(path) for task, path in ckpt.items()}


@pytest.fixture
def serve(monkeypatch, ckpt):
    """``serve(task, **env)`` -> ``ts_handler`` initialised by its load-time call, with ``env`` as the environment."""
    import torch

    from handlers import ts_handler

    threads = torch.get_num_threads()

    def start(task: str, **env: str):
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SMTX_THREADS_PER_WORKER", "1")
        monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))  # restored afterwards
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert ts_handler.handle(None, make_context(ckpt[task])) is None
        return ts_handler

    yield start
    ts_handler._service = None
    torch.set_num_threads(threads)


# -- helpers ------------------------------------------------------------------------------------------------------
def expected(service: InferenceService, raws: list[dict]) -> list[dict]:
    """What ``tasks.predict`` answers for these records, with scores only where the record asked for them."""
    records = [make_record(service.spec.task, False, r) for r in raws]
    preds = predict(service.spec, service.tokenizer, service.runner, records, all_scores=True,
                    max_batch_size=service.settings.max_batch_size, max_tokens=service.settings.max_tokens)
    out = [p if r.get("all_scores") is True else {k: v for k, v in p.items() if k != "scores"}
           for r, p in zip(raws, preds)]
    return json.loads(json.dumps(out))




def json_body(records: list[dict]) -> bytes:
    return json.dumps({"data": records}).encode("utf-8")


def jsonlines_body(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")


def wire(body: bytes, content_type: str | None = JSON, accept: str | None = None, ct_name: str = "Content-Type",
         accept_name: str = "Accept", param_type: str | None = None) -> WireRequest:
    """A request as the frontend forwards it; the body parameter carries the request's content type by default."""
    headers = [("Host", "localhost:8080"), ("User-Agent", "curl/8.5.0"), ("Content-Length", str(len(body)))]
    if content_type is not None:
        headers.append((ct_name, content_type))
    if accept is not None:
        headers.append((accept_name, accept))
    return WireRequest(body, headers, (content_type or "") if param_type is None else param_type)


def call(handler, requests: list[WireRequest]) -> list[dict[str, Any]]:
    """Each request's status, reason, content type and body, read back from the context as TorchServe does."""
    data, context = ts_batch(requests)
    out = handler.handle(data, context)
    assert isinstance(out, list) and len(out) == len(requests)
    answers = []
    for idx, body in enumerate(out):
        status, reason = context.get_response_status(idx)
        answers.append({"status": status, "reason": reason, "type": context.get_response_content_type(idx),
                        "body": body})
    frame = read_response_frame(create_predict_response(out, context.request_ids, "Prediction success", 200,
                                                        context=context))
    # what goes back to the frontend carries the same per-request status, content type and bytes
    assert [(f["id"], f["status"], f["content_type"], f["body"]) for f in frame] == \
           [(f"req-{i}", a["status"], a["type"], a["body"]) for i, a in enumerate(answers)]
    return answers


def decoded(answer: dict, terminated: bool = True) -> Any:
    """The answer's JSON; jsonlines end with a newline unless ``terminated`` is False (Batch Transform, Line)."""
    if answer["type"] == JSONLINES:
        assert answer["body"].endswith(b"\n") == terminated
        return [json.loads(line) for line in answer["body"].decode("utf-8").splitlines()]
    return json.loads(answer["body"].decode("utf-8"))


def raising_runner(batch: dict[str, np.ndarray]) -> np.ndarray:
    raise RuntimeError("injected fault")


# -- the service, on plain values ---------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["classif", "ner"])
def test_service_answers_exactly_what_tasks_predict_answers(services, task):
    service = services[task]
    raws = [{"text": TEXTS[0]}, {"text": TEXTS[1], "all_scores": True}, {"text": TEXTS[2]}, {"text": TEXTS[3]}]
    [response] = service.handle([Request(json_body(raws), {"content-type": JSON})])
    assert (response.status, response.content_type, response.reason) == (200, JSON, "OK")
    assert json.loads(response.body) == {"predictions": expected(service, raws)}


@pytest.mark.parametrize("body", [
    json_body([{"text": TEXTS[0]}, {"text": TEXTS[1]}]),
    json_body([{"text": TEXTS[0]}, {"text": TEXTS[1]}]).decode("utf-8"),
    {"data": [{"text": TEXTS[0]}, {"text": TEXTS[1]}]},
    [{"text": TEXTS[0]}, {"text": TEXTS[1]}],
], ids=["bytes", "str", "parsed-dict", "parsed-list"])
def test_bytes_and_already_parsed_bodies_answer_the_same(services, body):
    service = services["classif"]
    [response] = service.handle([Request(body, {"content-type": JSON})])
    assert response.status == 200
    assert json.loads(response.body) == {"predictions": expected(service, [{"text": TEXTS[0]}, {"text": TEXTS[1]}])}


@pytest.mark.parametrize("body", [json.dumps({"text": TEXTS[3]}).encode(), {"text": TEXTS[3]}], ids=["bytes", "parsed"])
def test_a_single_text_object_is_one_record(services, body):
    service = services["ner"]
    [response] = service.handle([Request(body, {"content-type": JSON})])
    assert response.status == 200
    assert json.loads(response.body) == {"predictions": expected(service, [{"text": TEXTS[3]}])}


def test_ner_answers_one_label_per_word_with_entities(services):
    service = services["ner"]
    texts = [TEXTS[1], f"  {MARKER}   grace kim\tvisited  lagos  ", TEXTS[3]]
    [response] = service.handle([Request(json_body([{"text": t} for t in texts]), {"content-type": JSON})])
    preds = json.loads(response.body)["predictions"]
    assert len(preds) == len(texts)
    for text, pred in zip(texts, preds):
        words = text.split()
        assert set(pred) == {"pred", "proba", "entities"}
        assert len(pred["pred"]) == len(pred["proba"]) == len(words)
        assert set(pred["pred"]) <= set(service.spec.labels)
        assert all(0.0 <= p <= 1.0 for p in pred["proba"])
        assert pred["entities"] == json.loads(json.dumps(entities(words, pred["pred"], pred["proba"])))
    assert preds == expected(service, [{"text": t} for t in texts])


@pytest.mark.parametrize("task", ["classif", "ner"])
def test_all_scores_only_for_the_records_that_ask(services, task):
    service = services[task]
    raws = [{"text": TEXTS[0], "all_scores": True}, {"text": TEXTS[1]}, {"text": TEXTS[2], "all_scores": "true"},
            {"text": TEXTS[3], "all_scores": False}]
    [response] = service.handle([Request(json_body(raws), {"content-type": JSON})])
    preds = json.loads(response.body)["predictions"]
    assert ["scores" in p for p in preds] == [True, False, False, False]
    labels = list(service.spec.labels)
    if task == "classif":
        scores = preds[0]["scores"]
        assert list(scores) == labels
        assert sum(scores.values()) == pytest.approx(1.0)
        assert scores[preds[0]["pred"]] == pytest.approx(preds[0]["proba"]) == max(scores.values())
    else:
        per_word = preds[0]["scores"]
        assert len(per_word) == len(TEXTS[0].split())
        for word_scores, label, proba in zip(per_word, preds[0]["pred"], preds[0]["proba"]):
            assert list(word_scores) == labels and sum(word_scores.values()) == pytest.approx(1.0)
            assert word_scores[label] == pytest.approx(proba)
    assert preds == expected(service, raws)


@pytest.mark.parametrize("body,content_type,error", [
    ({"data": []}, JSON, {"error": 'no records: send at least one {"text": ...}'}),
    ([], JSON, {"error": 'no records: send at least one {"text": ...}'}),
    ({"data": [{"text": TEXTS[0]}, {"txt": TEXTS[1]}]}, JSON, {"error": "record 1: text is missing", "record": 1}),
    ({"data": [{"text": 5}]}, JSON, {"error": "record 0: text must be a string, got int", "record": 0}),
    ({"data": [{"text": " \t "}]}, JSON, {"error": "record 0: text is empty", "record": 0}),
    ({"data": [{"text": TEXTS[0]}, TEXTS[1]]}, JSON,
     {"error": "record 1: a record must be a JSON object with 'text', got str", "record": 1}),
    (jsonlines_body([{"text": TEXTS[0]}]) + b"\n" + jsonlines_body([{"text": TEXTS[1]}]), JSONLINES,
     {"error": "record 1: line 2 is blank", "record": 1}),
    (jsonlines_body([{"text": TEXTS[0]}]) + b'{"text": NaN}\n', JSONLINES,
     {"error": "record 1: NaN is not valid JSON (NaN and Infinity are not allowed)", "record": 1}),
    (jsonlines_body([{"text": TEXTS[0]}]) + b"[1]\n", JSONLINES,
     {"error": "record 1: a record must be a JSON object with 'text', got list", "record": 1}),
])
def test_an_invalid_record_fails_its_request_with_400(services, body, content_type, error):
    [response] = services["classif"].handle([Request(body, {"content-type": content_type})])
    assert (response.status, response.reason, response.content_type) == (400, "Bad Request", content_type)
    assert response.body == codecs.encode_error(error, content_type)


def test_an_empty_batch_answers_nothing(services):
    assert services["classif"].handle([]) == []


def test_too_many_records_is_413(ckpt):
    service = InferenceService(ckpt["classif"], Settings(max_records=2))
    two, three = [{"text": t} for t in TEXTS[:2]], [{"text": t} for t in TEXTS[:3]]
    ok, too_many = service.handle([Request(json_body(two), {"content-type": JSON}),
                                   Request(jsonlines_body(three), {"content-type": JSONLINES})])
    assert ok.status == 200 and len(json.loads(ok.body)["predictions"]) == 2
    assert (too_many.status, too_many.reason, too_many.content_type) == (413, "Payload Too Large", JSONLINES)
    assert too_many.body == b'{"error": "3 records; the limit is 2 per request"}\n'


def test_a_text_over_the_limit_is_413_naming_the_record(ckpt):
    service = InferenceService(ckpt["classif"], Settings(max_text_chars=30))
    at_limit, over = f"{MARKER} " + "x" * 23, f"{MARKER} " + "x" * 24
    assert (len(at_limit), len(over)) == (30, 31)
    ok, too_long = service.handle([Request(json_body([{"text": at_limit}]), {"content-type": JSON}),
                                   Request(json_body([{"text": at_limit}, {"text": over}]), {"content-type": JSON})])
    assert ok.status == 200
    assert (too_long.status, too_long.reason) == (413, "Payload Too Large")
    assert json.loads(too_long.body) == {"error": "record 1: text has 31 characters; the limit is 30", "record": 1}


def test_inline_record_errors_keep_every_record_in_place(ckpt):
    service = InferenceService(ckpt["classif"], Settings(inline_record_errors=True, max_text_chars=200))
    raws = [{"text": TEXTS[0]}, {"text": ""}, {"text": TEXTS[1]}, "x" * 3, {"text": "y" * 201}]
    [response] = service.handle([Request(json_body(raws), {"content-type": JSON})])
    assert response.status == 200
    preds = json.loads(response.body)["predictions"]
    good = expected(service, [raws[0], raws[2]])
    assert preds == [good[0], {"error": "record 1: text is empty", "record": 1}, good[1],
                     {"error": "record 3: a record must be a JSON object with 'text', got str", "record": 3},
                     {"error": "record 4: text has 201 characters; the limit is 200", "record": 4}]


def test_a_batch_answered_in_slices_equals_one_answered_at_once(ckpt):
    # slices bound what a huge asynchronous request holds; the answers must not depend on them
    raws = [{"text": TEXTS[i % 4], "all_scores": i % 3 == 0} for i in range(9)] + [{"text": ""}, {"text": TEXTS[0]}]
    requests = [Request(json_body(raws[:5]), {"content-type": JSON}),
                Request(jsonlines_body(raws[5:]), {"content-type": JSONLINES}),
                Request(json_body(raws[2:4]), {"content-type": JSONLINES, "accept": JSON})]
    whole = InferenceService(ckpt["classif"], Settings(inline_record_errors=True))
    sliced = InferenceService(ckpt["classif"], Settings(inline_record_errors=True, stream_records=2))
    at_once, in_slices = whole.handle(requests), sliced.handle(requests)
    assert [(r.status, r.content_type) for r in in_slices] == [(r.status, r.content_type) for r in at_once]
    for a, b in zip(at_once, in_slices):
        if b.content_type == JSONLINES:
            assert_close([json.loads(line) for line in bytes(b.body).splitlines()],
                         [json.loads(line) for line in bytes(a.body).splitlines()])
        else:
            assert_close(json.loads(bytes(b.body)), json.loads(bytes(a.body)))
    assert json.loads(bytes(in_slices[1].body).splitlines()[4]) == {"error": "record 4: text is empty", "record": 4}


def test_a_failing_model_is_500_for_requests_with_records_and_4xx_for_the_invalid(ckpt, caplog):
    service = InferenceService(ckpt["classif"])
    service.runner = raising_runner  # fault injection: the model fails at run time
    responses = service.handle([
        Request(json_body([{"text": TEXTS[0]}]), {"content-type": JSON}),
        Request(json_body([{"text": TEXTS[1]}]), {"content-type": "text/csv"}),
        Request(jsonlines_body([{"text": TEXTS[2]}]), {"content-type": JSONLINES}),
        Request(f'{{"text": {MARKER}}}'.encode(), {"content-type": JSON}),
        Request(json_body([{"text": TEXTS[3]}]), {"content-type": JSON, "accept": "text/html"}),
        Request(json_body([{"text": ""}]), {"content-type": JSON}),
    ])
    assert [(r.status, r.reason, r.content_type) for r in responses] == [
        (500, "Internal Server Error", JSON), (415, "Unsupported Media Type", JSON),
        (500, "Internal Server Error", JSONLINES), (400, "Bad Request", JSON), (406, "Not Acceptable", JSON),
        (400, "Bad Request", JSON)]
    assert [r.body for r in responses] == [
        b'{"error": "prediction failed; see the server log"}',
        f'{{"error": "content type \'text/csv\' is not supported; send one of {SUPPORTED}"}}'.encode(),
        b'{"error": "prediction failed; see the server log"}\n',
        b'{"error": "body is not valid JSON: Expecting value at line 1 column 10"}',
        b'{"error": "cannot answer in \'text/html\'; accepted: application/json, application/jsonlines or */*"}',
        b'{"error": "record 0: text is empty", "record": 0}']
    [failure] = [r for r in caplog.records if r.getMessage() == "prediction failed"]
    assert failure.levelno == logging.ERROR and failure.exc_info[0] is RuntimeError


@pytest.mark.parametrize("error", ["host", "cuda"])
def test_running_out_of_memory_is_507_not_500(ckpt, error):
    import torch

    def out_of_memory(batch):
        raise MemoryError() if error == "host" else torch.OutOfMemoryError("CUDA out of memory. Tried to allocate")

    service = InferenceService(ckpt["classif"])
    service.runner = out_of_memory  # fault injection: the allocator fails on this batch
    [response] = service.handle([Request(json_body([{"text": TEXTS[0]}]), {"content-type": JSON})])
    assert (response.status, response.reason) == (507, "Insufficient Storage")
    assert json.loads(bytes(response.body)) == {"error": "out of memory on this batch"}


def test_a_failing_model_does_not_fail_a_request_that_had_nothing_to_predict(ckpt):
    service = InferenceService(ckpt["classif"], Settings(inline_record_errors=True))
    service.runner = raising_runner
    good, all_bad = service.handle([Request(jsonlines_body([{"text": TEXTS[0]}]), {"content-type": JSONLINES}),
                                    Request(b'{"text": ""}\n\n', {"content-type": JSONLINES})])
    assert good.status == 500
    assert (all_bad.status, all_bad.body) == (200, b'{"error": "record 0: text is empty", "record": 0}\n')


def test_a_model_answering_nan_is_500_not_a_failed_batch(ckpt):
    service = InferenceService(ckpt["classif"])
    service.runner = lambda batch: np.full((len(batch["input_ids"]), len(service.spec.labels)), np.nan, np.float32)
    good, bad = service.handle([Request(json_body([{"text": TEXTS[0]}]), {"content-type": JSON}),
                                Request(json_body([{"text": TEXTS[1]}]), {"content-type": "text/csv"})])
    assert (good.status, bad.status) == (500, 415)


# -- the TorchServe handler, with TorchServe's Context ------------------------------------------------------------
def test_a_mixed_batch_gives_each_request_its_own_status_and_type(serve, services):
    handler = serve("classif")
    good = [{"text": TEXTS[0]}, {"text": TEXTS[1]}]
    answers = call(handler, [
        wire(json_body(good)),
        wire(b'{"data": [' + MARKER.encode()),
        wire(json_body(good), content_type="text/csv"),
        wire(json_body(good), accept="text/html"),
        wire(jsonlines_body(good), content_type=JSONLINES, accept=JSON),
        wire(b""),
        wire(json_body([{"text": TEXTS[2]}, {"text": ""}]), accept=JSONLINES),
        wire(jsonlines_body(good), content_type=JSONLINES),
    ])
    assert [(a["status"], a["reason"], a["type"]) for a in answers] == [
        (200, None, JSON), (400, "Bad Request", JSON), (415, "Unsupported Media Type", JSON),
        (406, "Not Acceptable", JSON), (200, None, JSON), (400, "Bad Request", JSON),
        (400, "Bad Request", JSONLINES), (200, None, JSONLINES)]
    want = expected(services["classif"], good)
    assert_close(decoded(answers[0]), {"predictions": want})
    assert decoded(answers[1]) == {"error": "body is not valid JSON: Expecting value at line 1 column 11"}
    assert decoded(answers[2]) == {"error": f"content type 'text/csv' is not supported; send one of {SUPPORTED}"}
    assert decoded(answers[3]) == {
        "error": "cannot answer in 'text/html'; accepted: application/json, application/jsonlines or */*"}
    assert_close(decoded(answers[4]), {"predictions": want})
    assert decoded(answers[5]) == {"error": "body is empty"}
    assert decoded(answers[6]) == [{"error": "record 1: text is empty", "record": 1}]
    assert_close(decoded(answers[7]), want)


@pytest.mark.parametrize("ct_name", ["Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
@pytest.mark.parametrize("accept_name", ["Accept", "accept", "ACCEPT"])
def test_header_names_match_in_any_casing(serve, services, ct_name, accept_name):
    handler = serve("classif")
    raws = [{"text": TEXTS[0]}, {"text": TEXTS[2]}]
    # no parameter-level type: only the request headers can say jsonlines in, JSON out
    [answer] = call(handler, [wire(jsonlines_body(raws), JSONLINES, JSON, ct_name, accept_name, param_type="")])
    assert (answer["status"], answer["type"]) == (200, JSON)
    assert_close(decoded(answer), {"predictions": expected(services["classif"], raws)})


@pytest.mark.parametrize("content_type,accept,answer_type", [
    (JSON, None, JSON), (JSON, "*/*", JSON), (JSON, JSON, JSON), (JSON, JSONLINES, JSONLINES),
    (JSONLINES, None, JSONLINES), (JSONLINES, "*/*", JSONLINES), (JSONLINES, JSON, JSON),
    (JSONLINES, JSONLINES, JSONLINES), ("application/json; charset=utf-8", "application/jsonlines; q=0.9", JSONLINES),
    ("application/x-jsonlines", "application/json;q=0.2, application/jsonlines;q=0.1", JSON),
    (None, None, JSON),
])
def test_every_content_type_and_accept_combination(serve, services, content_type, accept, answer_type):
    handler = serve("ner")
    raws = [{"text": TEXTS[1]}, {"text": TEXTS[3], "all_scores": True}]
    body = jsonlines_body(raws) if content_type and "jsonlines" in content_type else json_body(raws)
    [answer] = call(handler, [wire(body, content_type, accept)])
    assert (answer["status"], answer["reason"], answer["type"]) == (200, None, answer_type)
    want = expected(services["ner"], raws)
    assert_close(decoded(answer), want if answer_type == JSONLINES else {"predictions": want})


@pytest.mark.parametrize("param_type,answer_type", [(JSONLINES, JSONLINES), (JSON, JSON),
                                                    ("application/json; charset=utf-8", JSON)])
def test_the_parameter_content_type_is_used_when_the_header_is_absent(serve, services, param_type, answer_type):
    handler = serve("classif")
    raws = [{"text": TEXTS[0]}, {"text": TEXTS[1]}]
    body = jsonlines_body(raws) if param_type == JSONLINES else json_body(raws)
    [answer] = call(handler, [wire(body, content_type=None, param_type=param_type)])
    assert (answer["status"], answer["type"]) == (200, answer_type)
    want = expected(services["classif"], raws)
    assert_close(decoded(answer), want if answer_type == JSONLINES else {"predictions": want})


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=utf-8", "text/json"])
@pytest.mark.parametrize("ts_decodes", ["true", "false"])
def test_parsed_and_raw_bodies_from_torchserve_answer_the_same(serve, services, monkeypatch, content_type, ts_decodes):
    handler = serve("classif")
    monkeypatch.setenv("TS_DECODE_INPUT_REQUEST", ts_decodes)
    raws = [{"text": TEXTS[0] + " caf\u00e9 \u6771\u4eac", "all_scores": True}, {"text": TEXTS[2]}]
    requests = [wire(json_body(raws), content_type)]
    data, _ = ts_batch(requests)
    body_kind = type(data[0]["body"])
    # TorchServe parses exactly 'application/json' itself and decodes 'text/*' to str; the rest stays bytes
    assert body_kind is {("true", JSON): dict, ("true", "text/json"): str}.get((ts_decodes, content_type), bytearray)
    [answer] = call(handler, requests)
    assert (answer["status"], answer["type"]) == (200, JSON)
    assert "caf\u00e9 \u6771\u4eac" not in answer["body"].decode("utf-8")  # the answer never echoes the text
    assert_close(decoded(answer), {"predictions": expected(services["classif"], raws)})


def test_nan_is_refused_whether_or_not_torchserve_parsed_the_body(serve, monkeypatch):
    handler = serve("classif")
    body = ('{"data": [{"text": "' + TEXTS[0] + '", "weight": NaN}]}').encode()
    statuses = []
    for ts_decodes in ("false", "true"):
        monkeypatch.setenv("TS_DECODE_INPUT_REQUEST", ts_decodes)
        [answer] = call(handler, [wire(body)])
        statuses.append((answer["status"], decoded(answer)))
    error = {"error": "NaN is not valid JSON (NaN and Infinity are not allowed)"}
    assert statuses == [(400, error), (400, error)]


def test_a_single_text_object_through_the_handler(serve, services):
    handler = serve("ner")
    [answer] = call(handler, [wire(json.dumps({"text": TEXTS[3]}).encode())])
    assert (answer["status"], answer["type"]) == (200, JSON)
    assert_close(decoded(answer), {"predictions": expected(services["ner"], [{"text": TEXTS[3]}])})


def test_ner_through_the_handler_answers_per_word(serve, services):
    handler = serve("ner")
    raws = [{"text": t} for t in TEXTS]
    [answer] = call(handler, [wire(jsonlines_body(raws), JSONLINES)])
    lines = decoded(answer)
    assert [len(line["pred"]) for line in lines] == [len(t.split()) for t in TEXTS]
    assert all(set(line) == {"pred", "proba", "entities"} for line in lines)
    assert_close(lines, expected(services["ner"], raws))


def test_limits_come_from_the_environment(serve):
    handler = serve("classif", SMTX_MAX_RECORDS="2", SMTX_MAX_TEXT_CHARS="40")
    short = [{"text": f"{MARKER} team won"}]
    answers = call(handler, [
        wire(json_body(short * 3)),
        wire(jsonlines_body(short + [{"text": f"{MARKER} " + "z" * 35}]), JSONLINES),
        wire(json_body(short * 2)),
    ])
    assert [(a["status"], a["reason"], a["type"]) for a in answers] == [
        (413, "Payload Too Large", JSON), (413, "Payload Too Large", JSONLINES), (200, None, JSON)]
    assert decoded(answers[0]) == {"error": "3 records; the limit is 2 per request"}
    assert decoded(answers[1]) == [{"error": "record 1: text has 42 characters; the limit is 40", "record": 1}]


def test_batch_transform_answers_one_line_per_input_line(serve, services):
    handler = serve("classif", SAGEMAKER_BATCH="true", SMTX_MAX_TEXT_CHARS="150")
    lines = [json.dumps({"text": TEXTS[0]}), "", json.dumps({"text": ""}), f"not json {MARKER}", "[1]",
             json.dumps({"text": f"{MARKER} " + "w" * 150}), '{"text": NaN}', json.dumps({"text": TEXTS[1]}),
             json.dumps({"text": TEXTS[3], "all_scores": True})]
    body = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    answers = call(handler, [wire(body, JSONLINES), wire(b"{}", "text/csv")])
    assert [(a["status"], a["type"]) for a in answers] == [(200, JSONLINES), (415, JSON)]
    out = decoded(answers[0], terminated=False)
    assert len(out) == len(lines)
    good = expected(services["classif"], [json.loads(lines[i]) for i in (0, 7, 8)])
    assert_close(out, [
        good[0],
        {"error": "record 1: line 2 is blank", "record": 1},
        {"error": "record 2: text is empty", "record": 2},
        {"error": "record 3: line 4 is not valid JSON: Expecting value at line 1 column 1", "record": 3},
        {"error": "record 4: a record must be a JSON object with 'text', got list", "record": 4},
        {"error": "record 5: text has 157 characters; the limit is 150", "record": 5},
        {"error": "record 6: NaN is not valid JSON (NaN and Infinity are not allowed)", "record": 6},
        good[1],
        good[2],
    ])


def assemble(bodies: list[bytes], assemble_with: str) -> bytes:
    """Batch Transform's output file: every response body as it came, plus a newline after each under Line."""
    return b"".join(body + (b"\n" if assemble_with == "Line" else b"") for body in bodies)


@pytest.mark.parametrize("assemble_with", ["Line", "None"])
def test_batch_transform_output_is_exactly_one_line_per_input_line(serve, assemble_with):
    # SageMaker does not tell the container how it assembles; the launcher sets SMTX_ASSEMBLE_WITH (Line by default)
    env = {"SMTX_ASSEMBLE_WITH": assemble_with} if assemble_with != "Line" else {}
    handler = serve("classif", SAGEMAKER_BATCH="true", **env)
    records = [{"text": TEXTS[i % len(TEXTS)]} for i in range(7)] + [{"text": 5}]
    mini_batches = [records[:3], records[3:4], records[4:]]  # as SplitType=Line + MultiRecord cuts the file
    answers = call(handler, [wire(jsonlines_body(batch), JSONLINES) for batch in mini_batches])
    assert [a["status"] for a in answers] == [200] * 3
    output = assemble([a["body"] for a in answers], assemble_with)
    lines = output.decode("utf-8").split("\n")
    assert lines[-1] == "" and "" not in lines[:-1], output  # no blank line between mini-batches
    answered = [json.loads(line) for line in lines[:-1]]
    assert len(answered) == len(records)
    assert all("pred" in a for a in answered[:-1]) and answered[-1]["error"].endswith("text must be a string, got int")


def test_a_bad_assemble_with_fails_the_worker_load(serve):
    with pytest.raises(ValueError, match="SMTX_ASSEMBLE_WITH='Lines' is not valid; expected one of Line, None"):
        serve("classif", SAGEMAKER_BATCH="true", SMTX_ASSEMBLE_WITH="Lines")


def test_a_failing_model_through_the_handler(serve):
    handler = serve("ner")
    handler._service.runner = raising_runner  # fault injection: the model fails at run time
    answers = call(handler, [wire(json_body([{"text": TEXTS[0]}])), wire(b"{}", "text/csv"),
                             wire(jsonlines_body([{"text": TEXTS[1]}]), JSONLINES), wire(json_body([{"text": 3}]))])
    assert [(a["status"], a["reason"], a["type"]) for a in answers] == [
        (500, "Internal Server Error", JSON), (415, "Unsupported Media Type", JSON),
        (500, "Internal Server Error", JSONLINES), (400, "Bad Request", JSON)]
    assert decoded(answers[0]) == {"error": "prediction failed; see the server log"}
    assert decoded(answers[3]) == {"error": "record 0: text must be a string, got int", "record": 0}


# -- the edge's one config ----------------------------------------------------------------------------------------
def test_settings_from_the_environment():
    from handlers.ts_handler import settings_from_env

    def limits(settings: Settings) -> tuple:
        return (settings.max_records, settings.max_text_chars, settings.inline_record_errors, settings.max_batch_size,
                settings.max_tokens)

    assert limits(settings_from_env({})) == limits(Settings()) == (10000, 100_000, False, 32, 16384)
    assert limits(settings_from_env({"SMTX_MAX_RECORDS": " 7 ", "SMTX_MAX_TEXT_CHARS": "", "SAGEMAKER_BATCH": "TRUE",
                                     "SMTX_MICRO_BATCH_SIZE": "4", "SMTX_MAX_BATCH_TOKENS": "512"})) == \
        (7, 100_000, True, 4, 512)
    assert settings_from_env({"SAGEMAKER_BATCH": "true"}).max_records == 10**9  # Batch Transform sizes by bytes
    assert settings_from_env({"SAGEMAKER_BATCH": "false"}).inline_record_errors is False
    with pytest.raises(ValueError) as info:
        settings_from_env({"SMTX_MAX_RECORDS": "ten"})
    assert str(info.value) == "SMTX_MAX_RECORDS='ten' is not valid; expected an integer"
    assert settings_from_env({"SMTX_THREADS_PER_WORKER": "3"}).threads == 3
    assert settings_from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "64"}).threads == max(1, (os.cpu_count() or 1) // 64)
    assert settings_from_env({"SMTX_WORKER_MAX_RESPONSE_BYTES": "1000"}).max_response_bytes == 1000


def test_the_text_limit_applies_to_every_text_a_task_reads(trained):
    service = InferenceService(trained("pair-classif"), Settings(max_text_chars=20))
    ok, long = "a short text", "w" * 21
    responses = service.handle([Request(json_body([{"text": ok, "text_pair": long}]), {"content-type": JSON}),
                                Request(json_body([{"text": ok, "text_pair": ok}]), {"content-type": JSON})])
    assert [r.status for r in responses] == [413, 200]
    assert json.loads(responses[0].body) == {"error": "record 0: text_pair has 21 characters; the limit is 20",
                                             "record": 0}
