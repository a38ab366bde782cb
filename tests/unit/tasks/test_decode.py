"""tasks.decode (logits -> the endpoint's answer, per task) and tasks.predict (encode -> batch -> run -> decode)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.decode import decode_classif, sigmoid, softmax
from tasks.features import Feature
from tasks.fields import Record
from tasks.kinds.multilabel import decode as decode_multilabel
from tasks.kinds.ner import decode as decode_ner
from tasks.kinds.ner import entities
from tasks.kinds.regression import decode as decode_regression
from tasks.predict import predict, run_features
from tasks.records import make_record
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import tokenizers  # noqa: F401 -- pytest fixtures

CLASSIF = TaskSpec(task="classif", model_type="bert", labels=("neg", "pos"))
MULTI = TaskSpec(task="multilabel-classif", model_type="bert", labels=("a", "b", "c"))
REGRESSION = TaskSpec(task="regression", model_type="bert")
NER = TaskSpec(task="ner", model_type="bert", labels=("O", "B-PER", "I-PER"))


def _seq_features(n: int) -> list[Feature]:
    return [Feature(record=r, input_ids=[2, 3]) for r in range(n)]


def test_softmax_and_sigmoid():
    assert softmax(np.array([0.0, math.log(3.0)])).tolist() == pytest.approx([0.25, 0.75])
    assert softmax(np.array([[1000.0, 1000.0]])).tolist() == [[0.5, 0.5]]  # no overflow
    assert sigmoid(np.array([0.0, math.log(3.0)])).tolist() == pytest.approx([0.5, 0.75])


# ---- classif -----------------------------------------------------------------------------------------------------

def test_classif_pred_and_proba():
    preds = decode_classif(CLASSIF, [Record("x"), Record("y")], _seq_features(2),
                           [np.array([0.0, math.log(3.0)]), np.array([2.0, 0.0])])
    assert [p["pred"] for p in preds] == ["pos", "neg"]
    assert preds[0]["proba"] == pytest.approx(0.75)
    assert preds[1]["proba"] == pytest.approx(math.e ** 2 / (math.e ** 2 + 1))
    assert all(set(p) == {"pred", "proba"} for p in preds)


def test_classif_all_scores():
    [pred] = decode_classif(CLASSIF, [Record("x")], _seq_features(1), [np.array([0.0, math.log(3.0)])],
                            all_scores=True)
    assert pred["scores"] == pytest.approx({"neg": 0.25, "pos": 0.75})
    assert list(pred["scores"]) == ["neg", "pos"]


def test_classif_maps_features_to_their_records():
    features = [Feature(record=1, input_ids=[2, 3]), Feature(record=0, input_ids=[2, 3])]
    preds = decode_classif(CLASSIF, [Record("x"), Record("y")], features, [np.array([5.0, 0.0]), np.array([0.0, 5.0])])
    assert [p["pred"] for p in preds] == ["pos", "neg"]


# ---- multilabel ----------------------------------------------------------------------------------------------------

def test_multilabel_default_threshold_is_inclusive_and_sorted_by_probability():
    [pred] = decode_multilabel(MULTI, [Record("x")], _seq_features(1), [np.array([0.0, 2.0, -2.0])])
    assert pred["pred"] == ["b", "a"]  # sigmoid(0) == 0.5 passes the 0.5 threshold
    assert pred["proba"] == pytest.approx([1 / (1 + math.e ** -2), 0.5])


def test_multilabel_per_label_thresholds():
    spec = TaskSpec(task="multilabel-classif", model_type="bert", labels=("a", "b", "c"),
                    thresholds={"a": 0.9, "c": 0.1})
    [pred] = decode_multilabel(spec, [Record("x")], _seq_features(1), [np.array([2.0, 0.0, -2.0])])
    # a: 0.88 < 0.9; b: 0.5 >= default 0.5; c: 0.12 >= 0.1
    assert pred["pred"] == ["b", "c"]


def test_multilabel_nothing_above_threshold_and_all_scores():
    [pred] = decode_multilabel(MULTI, [Record("x")], _seq_features(1), [np.array([-5.0, -1.0, 0.0])],
                               all_scores=True)
    assert (pred["pred"], pred["proba"][0]) == (["c"], 0.5)
    [pred] = decode_multilabel(MULTI, [Record("x")], _seq_features(1), [np.array([-5.0, -1.0, -0.1])],
                               all_scores=True)
    assert (pred["pred"], pred["proba"]) == ([], [])
    assert pred["scores"] == pytest.approx({"a": 1 / (1 + math.e ** 5), "b": 1 / (1 + math.e), "c": 0.47502081})


# ---- regression ------------------------------------------------------------------------------------------------------

def test_regression_pred_is_a_float_per_record():
    preds = decode_regression(REGRESSION, [Record("x"), Record("y")], _seq_features(2),
                              [np.array([2.5], dtype=np.float32), np.array(-1.0)], all_scores=True)
    assert preds == [{"pred": 2.5}, {"pred": -1.0}]
    assert type(preds[0]["pred"]) is float


# ---- entities ------------------------------------------------------------------------------------------------------

WORDS = ["Alice", "Martin", "met", "Bob", "in", "Paris"]


@pytest.mark.parametrize("labels, spans", [
    (["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"], [("PER", 0, 1), ("PER", 3, 3), ("LOC", 5, 5)]),
    (["I-PER", "I-PER", "O", "O", "O", "O"], [("PER", 0, 1)]),  # I- without B- starts a span
    (["O", "O", "O", "I-PER", "O", "I-LOC"], [("PER", 3, 3), ("LOC", 5, 5)]),
    (["B-PER", "I-LOC", "O", "O", "O", "O"], [("PER", 0, 0), ("LOC", 1, 1)]),  # I- of another type
    (["B-PER", "B-PER", "O", "O", "O", "O"], [("PER", 0, 0), ("PER", 1, 1)]),
    (["O", "O", "O", "O", "B-LOC", "I-LOC"], [("LOC", 4, 5)]),  # a span ending at the last word
    (["O"] * 6, []),
])
def test_entities_spans(labels, spans):
    found = entities(WORDS, labels, [0.5] * 6)
    assert [(e["type"], e["start_word"], e["end_word"]) for e in found] == spans
    assert all(set(e) == {"type", "start_word", "end_word", "text", "score"} for e in found)


def test_entity_text_and_score_is_the_mean_word_probability():
    found = entities(WORDS, ["B-PER", "I-PER", "O", "O", "B-WORK-OF-ART", "I-WORK-OF-ART"],
                     [0.9, 0.7, 0.99, 0.99, 0.6, 0.4])
    assert found == [
        {"type": "PER", "start_word": 0, "end_word": 1, "text": "Alice Martin", "score": pytest.approx(0.8)},
        {"type": "WORK-OF-ART", "start_word": 4, "end_word": 5, "text": "in Paris", "score": pytest.approx(0.5)},
    ]


# ---- ner -----------------------------------------------------------------------------------------------------------

def _onehot(rows: list[int], n: int = 3, high: float = math.log(8.0)) -> np.ndarray:
    """Logits with ``high`` at each row's index: probability 8/(8+n-1) for the chosen label."""
    out = np.zeros((len(rows), n))
    out[np.arange(len(rows)), rows] = high
    return out


def test_ner_one_label_per_word_from_first_sub_tokens():
    record = Record("Alice Martin joined")
    f = Feature(record=0, input_ids=[2, 10, 11, 12, 13, 3], first_of_word=[None, 0, None, 1, 2, None],
                context=[0, 0, 1, 1, 0, 0])
    # the continuation sub-token (position 2) says O; it must be ignored
    [pred] = decode_ner(NER, [record], [f], [_onehot([0, 1, 0, 2, 0, 0])], all_scores=True)
    assert pred["pred"] == ["B-PER", "I-PER", "O"]
    assert pred["proba"] == pytest.approx([0.8, 0.8, 0.8])
    assert pred["entities"] == [{"type": "PER", "start_word": 0, "end_word": 1, "text": "Alice Martin",
                                 "score": pytest.approx(0.8)}]
    assert pred["scores"][0] == pytest.approx({"O": 0.1, "B-PER": 0.8, "I-PER": 0.1})
    assert len(pred["scores"]) == 3


def test_ner_word_is_read_from_the_window_with_most_context_first_on_ties():
    record = Record("w0 w1 w2")
    first = Feature(record=0, input_ids=[2, 10, 11, 12, 3], first_of_word=[None, 0, 1, 2, None],
                    context=[0, 0, 1, 0, 0])
    second = Feature(record=0, input_ids=[2, 11, 12, 3], first_of_word=[None, 1, 2, None], context=[0, 0, 1, 0])
    outputs = [_onehot([0, 0, 1, 1, 0]), _onehot([0, 2, 2, 0])]
    [pred] = decode_ner(NER, [record], [first, second], outputs)
    # w1: context 1 in both -> the first window (B-PER); w2: context 0 vs 1 -> the second window (I-PER)
    assert pred["pred"] == ["O", "B-PER", "I-PER"]


def test_ner_word_without_a_sub_token_falls_back_to_o():
    spec = TaskSpec(task="ner", model_type="bert", labels=("B-PER", "I-PER", "O"))
    f = Feature(record=0, input_ids=[2, 10, 12, 3], first_of_word=[None, 0, 2, None], context=[0, 0, 0, 0])
    [pred] = decode_ner(spec, [Record("Alice \u200b Martin")], [f], [_onehot([0, 0, 0, 0])], all_scores=True)
    assert pred["pred"] == ["B-PER", "O", "B-PER"]
    assert pred["proba"][1] == 0.0 and pred["scores"][1] is None


def test_ner_fallback_without_an_o_label_is_the_first_label():
    spec = TaskSpec(task="ner", model_type="bert", labels=("B-PER", "I-PER"))
    [pred] = decode_ner(spec, [Record("nothing here")], [], [])
    assert (pred["pred"], pred["proba"], pred["entities"][0]["text"]) == (["B-PER", "B-PER"], [0.0, 0.0], "nothing")


def test_ner_several_records():
    features = [Feature(record=0, input_ids=[2, 10, 3], first_of_word=[None, 0, None], context=[0, 0, 0]),
                Feature(record=1, input_ids=[2, 10, 11, 3], first_of_word=[None, 0, 1, None], context=[0, 0, 0, 0])]
    preds = decode_ner(NER, [Record("Bob"), Record("Alice ran")], features, [_onehot([0, 1, 0]), _onehot([0, 0, 1, 0])])
    assert [p["pred"] for p in preds] == [["B-PER"], ["O", "B-PER"]]


# ---- predict: the one path, batched == unbatched ---------------------------------------------------------------------

class TokenRunner:
    """A numpy runtime for a token head: each token's label is ``input_id % 3``; it records batch shapes."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        self.shapes.append(batch["input_ids"].shape)
        out = np.zeros((*batch["input_ids"].shape, 3), dtype=np.float32)
        np.put_along_axis(out, (batch["input_ids"] % 3)[..., None], 4.0, axis=-1)
        return out


def test_predict_ner_batched_equals_unbatched_and_respects_max_tokens(tokenizers):
    spec = TaskSpec(task="ner", model_type="bert", labels=("O", "B-X", "I-X"), max_seq_length=8, stride=2)
    texts = ["the a an of in on to and or is was were", "the", "Alice xyz joined", "an of"]
    records = [make_record("ner", False, {"text": t}) for t in texts]
    small = TokenRunner()
    batched = predict(spec, tokenizers["bert"], small, records, max_batch_size=3, max_tokens=16)
    one = TokenRunner()
    unbatched = [predict(spec, tokenizers["bert"], one, [r], max_batch_size=1)[0] for r in records]
    assert batched == unbatched
    assert all(b == 1 or b * w <= 16 for b, w in small.shapes) and len(small.shapes) > 1
    # first sub-token ids: the=130 a=5 an=10 of=94 in=61 on=98 to=134 and=11 or=100 is=65 was=143 were=147
    assert batched[0]["pred"] == ["B-X", "I-X", "B-X", "B-X", "B-X", "I-X", "I-X", "I-X", "B-X", "I-X", "I-X", "O"]
    assert [len(p["pred"]) for p in batched] == [12, 1, 3, 2]


def test_run_features_unpads_token_outputs_in_feature_order():
    features = [Feature(record=0, input_ids=[2, 4, 3]), Feature(record=1, input_ids=[2, 5, 6, 7, 3])]
    outputs = run_features(NER, TokenRunner(), features, pad_token_id=0)
    assert [o.shape for o in outputs] == [(3, 3), (5, 3)]
    assert [o.argmax(-1).tolist() for o in outputs] == [[2, 1, 0], [2, 2, 0, 1, 0]]


def test_predict_sequence_task_keeps_record_order(tokenizers):
    def runner(batch: dict[str, np.ndarray]) -> np.ndarray:
        lengths = batch["attention_mask"].sum(axis=1).astype(np.float32)
        return np.stack([np.zeros_like(lengths), lengths - 4.5], axis=1)  # more than 4 tokens: "pos"

    texts = ["good", "the a an of in on", "bad hotel", "the a an of in on to and"]
    records = [make_record("classif", False, {"text": t}) for t in texts]
    preds = predict(CLASSIF, tokenizers["bert"], runner, records, max_batch_size=1)
    assert [p["pred"] for p in preds] == ["neg", "pos", "neg", "pos"]
    assert predict(CLASSIF, tokenizers["bert"], runner, [], max_batch_size=1) == []
