"""Property-based tests: whatever bytes arrive, the service answers each request once, with a typed status.

The service runs a real (untrained) tiny checkpoint -- the tiny random BERT of ``tests/helpers/tiny_models.py`` with a
fresh head, saved the way training saves -- so tokenisation, windows, micro-batching and the model all run for
real. Hypothesis is derandomised (the same examples on every run) and sized to keep the module well under 30 s.

Properties:
- any body in any content type and Accept: exactly one ``Response`` per request, status 200/400/406/413/415
  (never 500, never an exception), and a 200 carries exactly one output per input record;
- a server-side batch answers each request as that request alone would be answered;
- in Batch Transform mode (inline record errors) a decodable body answers one line per record, an error object
  exactly where the record is invalid;
- the task layer decodes any logits over any feature layout into one prediction per record and, for NER, one
  label per word.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from handlers import codecs
from handlers.errors import NotAcceptable, RequestError, UnsupportedMediaType
from handlers.service import InferenceService, Request, Settings
from tasks.batching import plan_batches
from tasks.encode import encode
from tasks.features import Feature
from tasks.fields import Record, split_words
from tasks.kinds import TASKS, task_kind
from tasks.predict import predict
from tasks.serving_contract import JSON, JSONLINES
from tasks.spec import TASK_SPEC_FILE, TaskSpec
from tests.helpers.fixtures_tokenizers import tiny_model_path, tiny_tokenizer

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL = settings(PROPERTY, max_examples=30)
CALLER_STATUSES = {200, 400, 406, 413, 415}
LABELS = {"ner": ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"), "classif": ("business", "health", "sports"),
          "multilabel-classif": ("delivery", "price", "quality"), "regression": (),
          "pair-classif": ("contradiction", "entailment", "neutral")}
assert set(LABELS) == set(TASKS), "every task of the table is sampled here"


def _record(task: str, text: str) -> Record:
    """A record with every text the task reads (a pair task's second text: the words reversed)."""
    pair = " ".join(reversed(text.split())) or text
    return Record(text=text, text_pair=pair if "text_pair" in task_kind(task).inputs else None)
#: small limits so that hypothesis reaches the 413 paths with small bodies
LIMITS = Settings(max_records=6, max_text_chars=80)


def _checkpoint(task: str, folder: Path) -> Path:
    """A self-describing checkpoint of the tiny BERT with an untrained head (what serving reads, no training)."""
    from runtimes.torch_runtime import model_class

    labels = LABELS[task]
    names = labels or ("value",)
    model = model_class(task).from_pretrained(
        str(tiny_model_path("bert")), num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        **({"problem_type": task_kind(task).problem_type} if task_kind(task).problem_type else {}))
    model.save_pretrained(str(folder))
    tiny_tokenizer("bert").save_pretrained(str(folder))
    spec = TaskSpec(task=task, model_type="bert", labels=labels, max_seq_length=16, stride=4,
                    thresholds={labels[0]: 0.4} if task == "multilabel-classif" else {})
    (folder / TASK_SPEC_FILE).write_text(json.dumps(spec.to_dict()), encoding="utf-8")
    return folder


_SERVICES: dict[tuple[str, bool], InferenceService] = {}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """``service(task, inline=False)`` -> an InferenceService over a real tiny checkpoint (built once)."""
    folders: dict[str, Path] = {}

    def get(task: str, inline: bool = False) -> InferenceService:
        if task not in folders:
            folders[task] = _checkpoint(task, tmp_path_factory.mktemp(f"prop-{task}"))
        key = (task, inline)
        if key not in _SERVICES:
            limits = Settings(max_records=LIMITS.max_records, max_text_chars=LIMITS.max_text_chars,
                              inline_record_errors=inline, max_batch_size=4, max_tokens=64)
            _SERVICES[key] = InferenceService(folders[task], limits)
        return _SERVICES[key]

    return get


# -- strategies -----------------------------------------------------------------------------------------------------
JSON_TYPES = ["application/json", "APPLICATION/JSON; charset=utf-8", "text/json", None, ""]
JSONLINES_TYPES = ["application/jsonlines", "Application/X-JSONLines;charset=UTF-8", "application/jsonl"]
BAD_TYPES = ["text/csv", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
GOOD_ACCEPTS = [None, "", "*/*", "application/json", "application/jsonlines", "text/html, application/*;q=0.2",
                "application/jsonlines;q=0.5, application/json;q=0.9"]
BAD_ACCEPTS = ["text/csv", "application/json;q=0"]
#: text a client could send (hypothesis' text() never draws lone surrogates; see the regression test below)
WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
TEXTS = st.lists(st.sampled_from(["the", "team", "won", "Paris", "alice", "##", "\u00e9t\u00e9", "\u200b", "\x00",
                                  "\U0001f600", "\t", " ", "\n", "long" * 5]) | WORDS, max_size=12).map(" ".join)
SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | TEXTS
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["text", "bbox", "data", "all_scores", "x"]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=12)
RECORDS = st.fixed_dictionaries({"text": TEXTS}, optional={"all_scores": st.booleans(), "extra": SCALARS})
ODD_RECORDS = st.fixed_dictionaries({"text": TEXTS | SCALARS}, optional={"all_scores": st.booleans()}) | JSON_VALUES
DOCUMENTS = (st.lists(RECORDS, min_size=1, max_size=8).map(lambda rs: {"data": rs}) | RECORDS
             | st.lists(RECORDS | ODD_RECORDS, max_size=8) | JSON_VALUES)


@st.composite
def requests(draw) -> tuple[bytes, str | None, str | None]:
    """(body, Content-Type, Accept): mostly a coherent JSON or jsonlines request, sometimes anything at all."""
    kind = draw(st.sampled_from(["json", "json", "jsonlines", "jsonlines", "damaged", "bytes"]))
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(DOCUMENTS), ensure_ascii=draw(st.booleans())).encode()
    else:
        values = draw(st.lists(RECORDS, min_size=1, max_size=8) | st.lists(RECORDS | ODD_RECORDS, min_size=1,
                                                                            max_size=8))
        lines = [json.dumps(v, ensure_ascii=draw(st.booleans())) for v in values]
        text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))
        body = (draw(st.sampled_from(["", "\ufeff"])) + text).encode()
        if kind == "damaged":
            cut = draw(st.integers(0, len(body)))
            body = body[:cut] + draw(st.binary(max_size=3)) + body[cut:][: draw(st.integers(0, len(body)))]
    types = JSONLINES_TYPES if kind in ("jsonlines", "damaged") else JSON_TYPES
    content_type = draw(st.sampled_from(types) | st.sampled_from(JSON_TYPES + JSONLINES_TYPES + BAD_TYPES)
                        | st.text(max_size=20)) if draw(st.integers(0, 4)) == 0 else draw(st.sampled_from(types))
    accept = draw(st.sampled_from(BAD_ACCEPTS) | st.text(max_size=20)) if draw(st.integers(0, 5)) == 0 else \
        draw(st.sampled_from(GOOD_ACCEPTS))
    return body, content_type, accept


# -- an oracle that does not use the code under test ----------------------------------------------------------------
def _count_records(body: bytes, media: str) -> int | None:
    """How many records the body holds, read with the standard library alone (None: not decodable)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if media == JSONLINES:
        lines = text.split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        return len(lines) or None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and "data" in value:
        return len(value["data"]) if isinstance(value["data"], list) else None
    return 1 if isinstance(value, dict) else len(value) if isinstance(value, list) else None


def _outputs(response, media: str) -> list[Any]:
    if media == JSON:
        return json.loads(response.body)["predictions"]
    assert response.body.endswith(b"\n") or response.body == b""
    return [json.loads(line) for line in response.body.decode("utf-8").split("\n")[:-1]]


def _headers(content_type: str | None, accept: str | None) -> dict[str, str]:
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if accept is not None:
        headers["accept"] = accept
    return headers


def _check_one(response, body: bytes, content_type: str | None, accept: str | None) -> None:
    assert response.status in CALLER_STATUSES, (response.status, response.body[:300])
    if response.status != 200:
        error = json.loads(response.body.decode("utf-8").strip())
        assert isinstance(error["error"], str) and error["error"]
        return
    media = codecs.media_type(content_type)  # a 200 means both headers were acceptable
    answer = codecs.negotiate(accept, media)
    assert response.content_type == answer
    outputs = _outputs(response, answer)
    assert len(outputs) == _count_records(body, media), "exactly one output per input record"
    assert all("pred" in o for o in outputs)


# -- properties of the service ----------------------------------------------------------------------------------------
@PROPERTY
@given(request=requests(), task=st.sampled_from(["classif", "ner"]))
@example(request=(b'{"data": [{"text": "a"}, {"text": "b"}]}', "application/json", None), task="ner")
@example(request=(b"\xef\xbb\xbf" + b'{"text": "x"}\r\n{"text": "y"}\r\n\r\n', "application/jsonlines", "*/*"),
         task="classif")
def test_any_request_gets_one_typed_answer_with_one_output_per_record(service, request, task):
    body, content_type, accept = request
    responses = service(task).handle([Request(body, _headers(content_type, accept))])
    assert len(responses) == 1
    _check_one(responses[0], body, content_type, accept)


@SMALL
@given(sent=st.lists(requests(), min_size=1, max_size=5))
def test_a_server_side_batch_answers_each_request_as_it_would_alone(service, sent):
    svc = service("ner")
    batch = [Request(body, _headers(ctype, accept)) for body, ctype, accept in sent]
    together = svc.handle(batch)
    assert len(together) == len(batch)
    for request, answer in zip(batch, together):
        alone = svc.handle([request])[0]
        assert (answer.status, answer.content_type) == (alone.status, alone.content_type)
        if answer.status != 200:
            assert answer.body == alone.body
        else:  # same labels; probabilities may differ in the last bits with another padding width
            media = answer.content_type
            assert [o["pred"] for o in _outputs(answer, media)] == [o["pred"] for o in _outputs(alone, media)]


def _valid(record: Any) -> bool:
    text = record.get("text") if isinstance(record, dict) else None
    return isinstance(text, str) and bool(text.strip()) and len(text) <= LIMITS.max_text_chars


@SMALL
@given(records=st.lists(RECORDS | ODD_RECORDS, min_size=1, max_size=LIMITS.max_records),
       task=st.sampled_from(["ner", "classif", "multilabel-classif", "regression"]))
def test_batch_transform_mode_answers_one_line_per_record_errors_in_place(service, records, task):
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    [response] = service(task, inline=True).handle([Request(body, {"content-type": "application/jsonlines"})])
    assert response.status == 200, response.body
    lines = _outputs(response, JSONLINES)
    assert len(lines) == len(records)
    for index, (record, line) in enumerate(zip(records, lines)):
        if _valid(record):
            assert "pred" in line
            if task == "ner":
                assert len(line["pred"]) == len(split_words(record["text"])) == len(line["proba"])
        else:
            assert line["record"] == index and line["error"].startswith(f"record {index}: ")


@SMALL
@given(records=st.lists(RECORDS | st.fixed_dictionaries({"text": SCALARS}), min_size=1, max_size=10))
def test_json_requests_are_all_or_nothing_outside_batch_transform(service, records):
    [response] = service("ner").handle([Request(json.dumps({"data": records}).encode(),
                                                {"content-type": "application/json"})])
    if len(records) > LIMITS.max_records:
        assert response.status == 413
    elif all(_valid(r) for r in records):
        assert response.status == 200
        preds = json.loads(response.body)["predictions"]
        assert [len(p["pred"]) for p in preds] == [len(split_words(r["text"])) for r in records]
    else:
        first_bad = next(i for i, r in enumerate(records) if not _valid(r))
        assert response.status in (400, 413) and json.loads(response.body)["record"] == first_bad


@PROPERTY
@given(header=st.text(max_size=40))
def test_content_type_and_accept_parsing_fail_only_with_their_typed_errors(header):
    try:
        codecs.media_type(header)
    except UnsupportedMediaType as exc:
        assert exc.status == 415
    try:
        assert codecs.negotiate(header, JSON) in (JSON, JSONLINES)
    except NotAcceptable as exc:
        assert exc.status == 406


@PROPERTY
@given(body=st.binary(max_size=300), media=st.sampled_from(sorted(codecs.DECODERS)))
def test_decoders_return_records_or_raise_one_typed_error(body, media):
    try:
        records = codecs.DECODERS[media](body)
    except RequestError as exc:
        assert exc.status == 400
    else:
        assert isinstance(records, list)


# -- regressions that hypothesis' default alphabets do not reach ----------------------------------------------------
def test_an_integer_too_long_for_python_is_a_400(service):
    body = b'{"text": "ok", "n": ' + b"7" * 5000 + b"}"
    [response] = service("classif").handle([Request(body, {"content-type": "application/json"})])
    assert response.status == 400


def test_a_lone_surrogate_fails_only_its_own_request_with_a_400(service):
    good = Request(b'{"text": "alice met bob"}', {"content-type": "application/json"})
    bad = Request(b'{"text": "alice \\ud800 bob"}', {"content-type": "application/json"})
    responses = service("ner").handle([good, bad])
    assert [r.status for r in responses] == [200, 400]


# -- properties of the task layer -------------------------------------------------------------------------------------
def _outputs_for(spec: TaskSpec, features: list[Feature], rng: np.random.Generator, scale: float) -> list[np.ndarray]:
    kind = task_kind(spec.task)
    token_head, width = kind.head == "token", kind.num_outputs(spec.labels)
    return [rng.normal(0, scale, size=(len(f), width) if token_head else (width,))
            for f in features]


def _check_predictions(spec: TaskSpec, records: list[Record], preds: list[dict]) -> None:
    assert len(preds) == len(records)
    for record, pred in zip(records, preds):
        if spec.task == "ner":
            n = len(split_words(record.text))
            assert len(pred["pred"]) == len(pred["proba"]) == n
            assert set(pred["pred"]) <= set(spec.labels)
            assert all(0.0 <= p <= 1.0 for p in pred["proba"])
            assert all(0 <= e["start_word"] <= e["end_word"] < n for e in pred["entities"])
        elif spec.task in ("classif", "pair-classif"):
            assert pred["pred"] in spec.labels and 0.0 <= pred["proba"] <= 1.0
        elif spec.task == "multilabel-classif":
            assert set(pred["pred"]) <= set(spec.labels) and len(pred["pred"]) == len(pred["proba"])
        else:
            assert np.isfinite(pred["pred"])


@PROPERTY
@given(task=st.sampled_from(sorted(LABELS)), texts=st.lists(TEXTS.filter(str.strip), min_size=1, max_size=6),
       max_len=st.integers(8, 24), stride_share=st.floats(0, 1), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_any_logits_over_any_window_layout_decode_to_one_prediction_per_record(task, texts, max_len, stride_share,
                                                                               seed, scale):
    spec = TaskSpec(task=task, model_type="bert", labels=LABELS[task], max_seq_length=max_len,
                    stride=int(stride_share * ((max_len - 2) // 2)))
    records = [_record(task, t) for t in texts]
    features = encode(spec, tiny_tokenizer("bert"), records)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):  # sigmoid of a large negative logit overflows to 0, as it should
        preds = task_kind(task).decode(spec, records, features, _outputs_for(spec, features, rng, scale), True)
    _check_predictions(spec, records, preds)


@PROPERTY
@given(words=st.lists(st.integers(1, 9), min_size=1, max_size=6), data=st.data())
def test_ner_gives_one_label_per_word_whatever_windows_cover(words, data):
    """Windows made up here: overlapping, duplicated or missing words; unseen words fall back to O."""
    spec = TaskSpec(task="ner", model_type="bert", labels=LABELS["ner"], max_seq_length=16, stride=2)
    records = [Record(text=" ".join(f"w{i}" for i in range(n))) for n in words]
    features, outputs = [], []
    for r, n in enumerate(words):
        for _ in range(data.draw(st.integers(0, 3))):
            covered = data.draw(st.lists(st.integers(0, n - 1), max_size=n + 2))
            first = [None, *covered, None]
            features.append(Feature(record=r, input_ids=[0] * len(first), first_of_word=first,
                                    context=data.draw(st.lists(st.integers(0, 8), min_size=len(first),
                                                               max_size=len(first)))))
            outputs.append(np.asarray(data.draw(st.lists(st.lists(st.floats(-50, 50), min_size=5, max_size=5),
                                                         min_size=len(first), max_size=len(first)))))
    preds = task_kind("ner").decode(spec, records, features, outputs, True)
    _check_predictions(spec, records, preds)
    for pred, n in zip(preds, words):
        assert len(pred["scores"]) == n


@PROPERTY
@given(task=st.sampled_from(sorted(LABELS)), texts=st.lists(TEXTS.filter(str.strip), min_size=1, max_size=8),
       batch=st.integers(1, 5), tokens=st.integers(1, 200))
def test_predict_with_any_micro_batching_gives_one_prediction_per_record(task, texts, batch, tokens):
    spec = TaskSpec(task=task, model_type="bert", labels=LABELS[task], max_seq_length=12, stride=3)
    width = task_kind(spec.task).num_outputs(spec.labels)

    def runner(inputs: dict[str, np.ndarray]) -> np.ndarray:
        n, length = inputs["input_ids"].shape
        shape = (n, length, width) if task_kind(task).head == "token" else (n, width)
        return np.random.default_rng(int(inputs["input_ids"].sum())).normal(size=shape)

    records = [_record(task, t) for t in texts]
    preds = predict(spec, tiny_tokenizer("bert"), runner, records, max_batch_size=batch, max_tokens=tokens)
    _check_predictions(spec, records, preds)


@PROPERTY
@given(lengths=st.lists(st.integers(1, 300), max_size=40), size=st.integers(1, 10), tokens=st.integers(1, 2000))
def test_micro_batches_cover_every_feature_once_within_bounds(lengths, size, tokens):
    batches = plan_batches(lengths, size, tokens)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= size
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= tokens
