"""tasks.encode and tasks.batching: word alignment, NER windows, LayoutLM boxes, family quirks, padding, batching.

Every tokenizer here is real: the tiny models' (loaded the way serving loads them) and the embedded MiniLM's.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from tasks.batching import pad, plan_batches
from tasks.encode import encode
from tasks.families import CLS_BOX, PAD_BOX, SEP_BOX
from tasks.features import IGNORE_INDEX, Feature, _windows
from tasks.kinds import task_kind
from tasks.kinds.ner import decode as decode_ner
from tasks.records import make_record
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import inputs_of, minilm, tiny_model_path, tokenizers  # noqa: F401 -- pytest fixtures

NER_LABELS = ("O", "B-PER", "I-PER")
TWELVE = "the a an of in on to and or is was were"  # twelve words, one WordPiece token each in the tiny vocab


def _ner_spec(model_type: str = "bert", **kwargs) -> TaskSpec:
    return TaskSpec(task="ner", model_type=model_type, labels=kwargs.pop("labels", NER_LABELS), **kwargs)


# ---- windows ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, size, stride, spans", [
    (0, 6, 2, [(0, 0)]),
    (6, 6, 2, [(0, 6)]),
    (12, 6, 2, [(0, 6), (4, 10), (8, 12)]),
    (10, 4, 0, [(0, 4), (4, 8), (8, 10)]),
    (7, 6, 2, [(0, 6), (4, 7)]),
])
def test_windows(n, size, stride, spans):
    assert _windows(n, size, stride) == spans


def test_windows_cover_every_token_and_overlap_by_stride():
    for n in range(1, 60):
        for size in (4, 7, 10):
            for stride in range(0, size // 2 + 1):
                spans = _windows(n, size, stride)
                assert spans[0][0] == 0 and spans[-1][1] == n
                assert all(0 < end - start <= size for start, end in spans)
                for (s0, e0), (s1, _) in zip(spans, spans[1:]):
                    assert e0 - s1 == stride and s1 > s0


# ---- NER alignment -------------------------------------------------------------------------------------------

def test_ner_alignment_first_sub_token_carries_the_label(tokenizers):
    record = make_record("ner", False, {"text": "Alice xyz joined"}, "B-PER I-PER O")
    [f] = encode(_ner_spec(), tokenizers["bert"], [record], with_labels=True)
    # alice | x ##y ##z | joined, between [CLS]=2 and [SEP]=3
    assert f.input_ids == [2, 9, 179, 227, 228, 67, 3]
    assert f.first_of_word == [None, 0, 1, None, None, 2, None]
    assert f.labels == [IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX]
    assert f.context == [0, 0, 1, 2, 1, 0, 0]
    assert (f.record, f.bbox, len(f)) == (0, None, 7)


def test_ner_without_labels_for_serving(tokenizers):
    [f] = encode(_ner_spec(), tokenizers["bert"], [make_record("ner", False, {"text": "Alice joined"})])
    assert (f.input_ids, f.first_of_word, f.labels) == ([2, 9, 67, 3], [None, 0, 1, None], None)


def test_ner_alignment_with_the_embedded_minilm_tokenizer(minilm):
    record = make_record("ner", False, {"text": "Hooli unbelievably"}, "B-ORG O")
    spec = TaskSpec(task="ner", model_type="bert", labels=("O", "B-ORG"))
    [f] = encode(spec, minilm, [record], with_labels=True)
    # ho ##oli | un ##bel ##ie ##va ##bly
    assert f.input_ids == [101, 7570, 10893, 4895, 8671, 2666, 3567, 6321, 102]
    assert f.first_of_word == [None, 0, None, 1, None, None, None, None, None]
    assert f.labels == [IGNORE_INDEX, 1, IGNORE_INDEX, 0] + [IGNORE_INDEX] * 5


def test_ner_windows_over_a_long_record(tokenizers):
    spec = _ner_spec(max_seq_length=8, stride=2)  # 6 tokens per window, 2 shared
    labels = "B-PER I-PER O O O O O O O O B-PER O"
    features = encode(spec, tokenizers["bert"], [make_record("ner", False, {"text": TWELVE}, labels)], True)
    assert [len(f) for f in features] == [8, 8, 6]
    assert [f.record for f in features] == [0, 0, 0]
    assert all(f.input_ids[0] == 2 and f.input_ids[-1] == 3 for f in features)
    assert [f.first_of_word for f in features] == [
        [None, 0, 1, 2, 3, 4, 5, None],
        [None, 4, 5, 6, 7, 8, 9, None],
        [None, 8, 9, 10, 11, None],
    ]
    assert [f.context for f in features] == [
        [0, 0, 1, 2, 2, 1, 0, 0],
        [0, 0, 1, 2, 2, 1, 0, 0],
        [0, 0, 1, 1, 0, 0],
    ]
    assert features[2].labels == [IGNORE_INDEX, 0, 0, 1, 0, IGNORE_INDEX]


def test_ner_window_starting_inside_a_word_does_not_label_its_continuation(tokenizers):
    spec = _ner_spec(max_seq_length=8, stride=2)
    record = make_record("ner", False, {"text": "the an of xyz in on"}, "O O O B-PER O O")
    first, second = encode(spec, tokenizers["bert"], [record], True)
    # tokens: the an of x ##y ##z in on; the second window starts at ##y
    assert first.first_of_word == [None, 0, 1, 2, 3, None, None, None]
    assert second.input_ids[1:3] == [227, 228]
    assert second.first_of_word == [None, None, None, 4, 5, None]
    assert second.labels == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 0, 0, IGNORE_INDEX]


def _per_word_logits(features: list[Feature], n_labels: int) -> list[np.ndarray]:
    """Logits whose arg-max at a word's first sub-token is ``word % n_labels``: decoding reveals the alignment."""
    outputs = []
    for f in features:
        out = np.zeros((len(f), n_labels))
        for pos, word in enumerate(f.first_of_word):
            if word is not None:
                out[pos, word % n_labels] = 5.0
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("model_type", ["bert", "longformer", "layoutlm"])
def test_every_word_gets_exactly_one_prediction(tokenizers, model_type):
    rng = random.Random(7)
    vocab = TWELVE.split() + ["xyz", "Alice", "Martin", "unknownish", "..."]
    texts = [" ".join(rng.choice(vocab) for _ in range(n)) for n in (1, 5, 23, 40)]
    use_bbox = model_type == "layoutlm"
    spec = TaskSpec(task="ner", model_type=model_type, labels=("O", "B-X", "I-X", "B-Y"), max_seq_length=12,
                    stride=3, use_bbox=use_bbox)
    records = [make_record("ner", use_bbox, {"text": t, "bbox": [[i, i, i + 1, i + 1] for i in range(len(t.split()))]})
               for t in texts]
    features = encode(spec, tokenizers[model_type], records)
    assert [f.record for f in features] == sorted(f.record for f in features)  # a record's windows are consecutive
    assert max(len(f) for f in features) <= 12
    for r, text in enumerate(texts):
        words = text.split()
        marked = {w for f in features if f.record == r for w in f.first_of_word if w is not None}
        assert marked == set(range(len(words)))
    preds = decode_ner(spec, records, features, _per_word_logits(features, 4))
    for text, pred in zip(texts, preds):
        n = len(text.split())
        assert pred["pred"] == [spec.labels[w % 4] for w in range(n)]
        assert len(pred["proba"]) == n


def test_a_word_without_sub_tokens_still_gets_a_prediction(tokenizers):
    # U+200B is not whitespace to str.split() but BERT's tokenizer drops it: the word has no sub-token
    records = [make_record("ner", False, {"text": "a \u200b b"})]
    spec = _ner_spec()
    [f] = encode(spec, tokenizers["bert"], records)
    assert f.first_of_word == [None, 0, 2, None]
    [pred] = decode_ner(spec, records, [f], _per_word_logits([f], 3))
    assert pred["pred"] == ["O", "O", "I-PER"]
    assert pred["proba"][1] == 0.0


# ---- LayoutLM boxes ------------------------------------------------------------------------------------------

def test_layoutlm_every_sub_token_gets_its_word_box(tokenizers):
    spec = _ner_spec("layoutlm", use_bbox=True)
    record = make_record("ner", True, {"text": "Alice xyz joined", "bbox": "1 2 3 4,5 6 7 8,9 10 11 12"}, "B-PER O O")
    [f] = encode(spec, tokenizers["layoutlm"], [record], True)
    assert f.bbox == [CLS_BOX, (1, 2, 3, 4), (5, 6, 7, 8), (5, 6, 7, 8), (5, 6, 7, 8), (9, 10, 11, 12), SEP_BOX]
    assert CLS_BOX == (0, 0, 0, 0) and SEP_BOX == (1000, 1000, 1000, 1000)


def test_layoutlm_boxes_follow_ner_windows(tokenizers):
    spec = _ner_spec("layoutlm", use_bbox=True, max_seq_length=8, stride=2)
    boxes = [[i, 0, i, 0] for i in range(12)]
    features = encode(spec, tokenizers["layoutlm"], [make_record("ner", True, {"text": TWELVE, "bbox": boxes})])
    assert [f.bbox[1:-1] for f in features] == [[(i, 0, i, 0) for i in range(a, b)] for a, b in
                                                 [(0, 6), (4, 10), (8, 12)]]
    assert all(f.bbox[0] == CLS_BOX and f.bbox[-1] == SEP_BOX for f in features)


def test_layoutlm_sequence_task_is_one_truncated_feature_with_boxes(tokenizers):
    spec = TaskSpec(task="classif", model_type="layoutlm", labels=("a", "b"), max_seq_length=8, stride=0,
                    use_bbox=True)
    boxes = [[i, i, i, i] for i in range(12)]
    record = make_record("classif", True, {"text": TWELVE, "bbox": boxes}, "b")
    [f] = encode(spec, tokenizers["layoutlm"], [record], True)
    assert f.input_ids == [2, 130, 5, 10, 94, 61, 98, 3]
    assert f.bbox == [CLS_BOX, *[(i, i, i, i) for i in range(6)], SEP_BOX]
    assert (f.labels, f.first_of_word, f.context) == (1, [], [])


# ---- family quirks ---------------------------------------------------------------------------------------------

def test_longformer_tokenizer_adds_the_prefix_space_to_pre_split_words(tokenizers):
    tok = tokenizers["longformer"]
    [f] = encode(_ner_spec("longformer"), tok, [make_record("ner", False, {"text": "Alice Martin joined"})])
    # pre-split words are encoded exactly as the running text (each word with its leading "Ġ")
    assert f.input_ids == tok("Alice Martin joined")["input_ids"] == [0, 299, 489, 308, 521, 363, 542, 2]
    assert tok.convert_ids_to_tokens(f.input_ids[1:-1]) == ["ĠA", "lice", "ĠM", "artin", "Ġj", "oined"]
    assert f.first_of_word == [None, 0, None, 1, None, 2, None, None]


def test_longformer_padding_puts_global_attention_on_the_first_token(tokenizers):
    tok = tokenizers["longformer"]
    spec = TaskSpec(task="classif", model_type="longformer", labels=("a", "b"))
    features = encode(spec, tok, [make_record("classif", False, {"text": t}) for t in ("Alice joined", "Alice")])
    batch = pad(features, inputs_of("longformer"), tok.pad_token_id)
    assert sorted(batch) == ["attention_mask", "global_attention_mask", "input_ids"]
    assert batch["global_attention_mask"].tolist() == [[1] + [0] * (len(features[0]) - 1)] * 2
    assert batch["input_ids"][1].tolist()[-1] == 1  # <pad> is 1 in RoBERTa vocabularies


def test_distilbert_batches_have_no_token_type_ids(tokenizers):
    tok = tokenizers["distilbert"]
    spec = TaskSpec(task="regression", model_type="distilbert")
    features = encode(spec, tok, [make_record("regression", False, {"text": "good hotel"}, "4")], True)
    batch = pad(features, inputs_of("distilbert"), tok.pad_token_id, labels=task_kind(spec.task).label_batch)
    assert sorted(batch) == ["attention_mask", "input_ids", "labels"]


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "longformer", "layoutlm"])
def test_padded_batch_is_what_the_model_forward_takes(tokenizers, model_type):
    import torch
    from transformers import AutoModel

    use_bbox = model_type == "layoutlm"
    spec = _ner_spec(model_type, use_bbox=use_bbox)
    records = [make_record("ner", use_bbox, {"text": t, "bbox": [[0, 0, 10, 10]] * len(t.split())})
               for t in ("Alice joined acme corp", "hi")]
    tok = tokenizers[model_type]
    batch = pad(encode(spec, tok, records), inputs_of(model_type), tok.pad_token_id)
    assert tuple(batch) == inputs_of(model_type)
    model = AutoModel.from_pretrained(str(tiny_model_path(model_type))).eval()
    with torch.inference_mode():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    assert tuple(hidden.shape[:2]) == batch["input_ids"].shape


# ---- sequence tasks ----------------------------------------------------------------------------------------------

def test_sequence_task_tokenises_the_raw_text_and_truncates(minilm):
    spec = TaskSpec(task="classif", model_type="bert", labels=("neg", "pos"), max_seq_length=8, stride=0)
    records = [make_record("classif", False, {"text": "Alice Martin joined Hooli"}, "pos"),
               make_record("classif", False, {"text": "the a an of in on to and or is"}, '"neg"')]
    short, long = encode(spec, minilm, records, with_labels=True)
    assert short.input_ids == [101, 5650, 3235, 2587, 7570, 10893, 102]
    assert (short.record, short.labels, short.first_of_word, short.bbox) == (0, 1, [], None)
    assert len(long) == 8 and long.input_ids[0] == 101 and long.input_ids[-1] == 102
    assert (long.record, long.labels) == (1, 0)


def test_multilabel_labels_are_multi_hot_in_spec_order(tokenizers):
    spec = TaskSpec(task="multilabel-classif", model_type="bert", labels=("price", "quality", "service"))
    records = [make_record("multilabel-classif", False, {"text": "good"}, '"service","price"'),
               make_record("multilabel-classif", False, {"text": "fine"}, "")]
    features = encode(spec, tokenizers["bert"], records, with_labels=True)
    assert [f.labels for f in features] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_regression_label_is_a_float_and_absent_without_labels(tokenizers):
    spec = TaskSpec(task="regression", model_type="bert")
    record = make_record("regression", False, {"text": "good"}, "3.25")
    assert encode(spec, tokenizers["bert"], [record], with_labels=True)[0].labels == 3.25
    assert encode(spec, tokenizers["bert"], [record])[0].labels is None


def test_encode_no_records(tokenizers):
    assert encode(_ner_spec(), tokenizers["bert"], []) == []


# ---- plan_batches ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lengths, max_batch_size, max_tokens, batches", [
    ([], 4, 100, []),
    ([5, 10, 3, 10], 2, 100, [[1, 3], [0, 2]]),
    ([10, 10, 10, 4, 4, 4], 32, 25, [[0, 1], [2, 3], [4, 5]]),
    ([50, 3], 8, 10, [[0], [1]]),  # a feature longer than the bound still runs, alone
    ([4, 4, 4], 8, 12, [[0, 1, 2]]),  # exactly at the bound
])
def test_plan_batches(lengths, max_batch_size, max_tokens, batches):
    assert plan_batches(lengths, max_batch_size, max_tokens) == batches


def test_plan_batches_respects_both_bounds_and_places_every_feature_once():
    rng = random.Random(3)
    for _ in range(200):
        lengths = [rng.randint(1, 64) for _ in range(rng.randint(1, 40))]
        size, tokens = rng.randint(1, 8), rng.randint(16, 256)
        batches = plan_batches(lengths, size, tokens)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert len(b) <= size
            assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= tokens


# ---- pad ---------------------------------------------------------------------------------------------------------

def test_pad_bert_inputs():
    features = [Feature(record=0, input_ids=[2, 5, 3]), Feature(record=1, input_ids=[2, 3])]
    batch = pad(features, inputs_of("bert"), pad_token_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert {v.dtype for v in batch.values()} == {np.dtype(np.int64)}
    assert "labels" not in batch


def test_pad_layoutlm_boxes_with_the_pad_box():
    features = [Feature(record=0, input_ids=[2, 5, 3], bbox=[CLS_BOX, (1, 2, 3, 4), SEP_BOX]),
                Feature(record=1, input_ids=[2, 3], bbox=[CLS_BOX, SEP_BOX])]
    boxes = pad(features, inputs_of("layoutlm"), 0)["bbox"]
    assert boxes.shape == (2, 3, 4) and boxes.dtype == np.int64
    assert boxes.tolist() == [[list(CLS_BOX), [1, 2, 3, 4], list(SEP_BOX)],
                              [list(CLS_BOX), list(SEP_BOX), list(PAD_BOX)]]


@pytest.mark.parametrize("task, labels, expected, dtype", [
    ("ner", [[IGNORE_INDEX, 1, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX]],
     [[IGNORE_INDEX, 1, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]], np.int64),
    ("classif", [1, 0], [1, 0], np.int64),
    ("pair-classif", [1, 0], [1, 0], np.int64),
    ("multilabel-classif", [[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]], np.float32),
    ("regression", [2.5, -1.0], [2.5, -1.0], np.float32),
])
def test_the_task_row_says_how_its_labels_are_stacked(task, labels, expected, dtype):
    features = [Feature(record=0, input_ids=[2, 5, 3], labels=labels[0]),
                Feature(record=1, input_ids=[2, 3], labels=labels[1])]
    out = pad(features, inputs_of("distilbert"), 0, labels=task_kind(task).label_batch)["labels"]
    assert out.dtype == dtype
    assert out.tolist() == expected
