"""Pre-split words tokenise as running text does, for every family's real kind of tokenizer.

NER reaches the tokenizer as pre-split words (``is_split_into_words=True``), one word at a time through the
pre-tokenizer; the model was pre-trained on running text. The two must give the same tokens -- the first word's
prefix space the only allowed difference -- or every word is encoded as no pre-training text ever was. Each
family's tiny tokenizer (``tests/helpers/tiny_models.py``: laid out as the family's hub checkpoints ship it) is checked
three ways, as it travels: loaded by training (``load_base_tokenizer``), reloaded from the checkpoint as torch
serving loads it (``load_tokenizer`` with the spec's prefix space), and as the archive's torch-free serving
tokenizer (``write_serving_tokenizer`` + ``ServingTokenizer.from_dir``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtimes.tokenizer import ServingTokenizer, write_serving_tokenizer
from runtimes.torch_runtime import load_base_tokenizer, load_tokenizer
from runtimes.word_start import word_start_ids
from tasks.encode import encode
from tasks.features import IGNORE_INDEX
from tasks.fields import split_words
from tasks.kinds.ner import decode as decode_ner
from tasks.records import make_record
from tasks.spec import TaskSpec
from tests.helpers.fixtures_tokenizers import MODEL_TYPES, tiny_model_path
from tests.helpers.tiny_models import KINDS, SPM_FILE, TINY, families_of

UNIGRAM = (*families_of("sentencepiece-unigram"), *families_of("spm-model"))
SENTENCES = [
    "Alice Martin joined Acme Corp. last year".split(),
    "the zebra flew to Tokyo on Monday , really !".split(),
    "Hugo Silva said: Globex grew 42% (truly) in 2026.".split(),
    "Café naïve façade -- ok".split(),
    ["Nairobi"],
]
#: a word none of the tiny SentencePiece vocabularies starts with a piece for: it splits into a lone "▁" + pieces
LONE_MARKER_WORD = "zebra"
ROUTES = ("training", "reloaded", "serving")


def test_every_kind_has_a_family_and_every_family_a_kind():
    assert all(families_of(kind) for kind in KINDS)
    assert sorted(f for kind in KINDS for f in families_of(kind)) == sorted(MODEL_TYPES)


def _load(model_type: str, route: str, folder: Path) -> Any:
    tokenizer, prefix_space = load_base_tokenizer(tiny_model_path(model_type))
    if route == "training":
        return tokenizer
    checkpoint = folder / "checkpoint"
    tokenizer.save_pretrained(str(checkpoint))  # what training writes next to the weights
    reloaded = load_tokenizer(checkpoint, prefix_space)
    if route == "reloaded":
        return reloaded
    write_serving_tokenizer(reloaded, folder)  # what make archive writes, from the tokenizer serving loads
    return ServingTokenizer.from_dir(folder)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``loaded(model_type, route)`` -> the tiny tokenizer as that route sees it (built once per module)."""
    made: dict[tuple[str, str], Any] = {}

    def get(model_type: str, route: str) -> Any:
        if (model_type, route) not in made:
            made[model_type, route] = _load(model_type, route, tmp_path_factory.mktemp(f"{model_type}-{route}"))
        return made[model_type, route]

    return get


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` under a transformers tokenizer or a ServingTokenizer."""
    return getattr(tokenizer, "backend_tokenizer", None) or tokenizer.backend


def differences(tokenizer: Any, words: list[str]) -> list[str]:
    """How the pre-split ``words`` tokenise otherwise than the same words as running text; empty when they agree
    but for the first word's prefix space. Both tokenizer kinds answer batch calls the same way."""
    backend = _backend(tokenizer)
    split = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
    split_ids, word_of = split["input_ids"][0], split.word_ids(0)
    text_ids = tokenizer([" ".join(words)], add_special_tokens=False)["input_ids"][0]
    first_ids = tokenizer([words[0]], add_special_tokens=False)["input_ids"][0]
    n_first = sum(1 for w in word_of if w == 0)
    problems = []
    if split_ids[n_first:] != text_ids[len(first_ids):]:
        problems.append(f"words after the first: {[backend.id_to_token(i) for i in split_ids[n_first:]]} "
                        f"pre-split, {[backend.id_to_token(i) for i in text_ids[len(first_ids):]]} as text")
    if text_ids[:len(first_ids)] != first_ids:
        problems.append("the first word tokenises otherwise inside the sentence than alone")
    if backend.decode(split_ids[:n_first]).strip() != backend.decode(first_ids).strip():
        problems.append(f"the first word reads {backend.decode(split_ids[:n_first])!r} pre-split, "
                        f"{backend.decode(first_ids)!r} as text")
    if sorted(set(word_of)) != list(range(len(words))):
        problems.append(f"not every word has a token: {word_of}")
    return problems


def _check_kind(loaded, kind: str, route: str) -> None:
    for model_type in families_of(kind):
        tokenizer = loaded(model_type, route)
        for words in SENTENCES:
            assert differences(tokenizer, words) == [], (model_type, route, words)


@pytest.mark.parametrize("route", ROUTES)
def test_wordpiece_pre_split_words_tokenise_as_running_text(loaded, route):
    _check_kind(loaded, "wordpiece", route)


@pytest.mark.parametrize("route", ROUTES)
def test_byte_level_bpe_pre_split_words_tokenise_as_running_text(loaded, route):
    _check_kind(loaded, "byte-level-bpe", route)


@pytest.mark.parametrize("route", ROUTES)
def test_sentencepiece_unigram_pre_split_words_tokenise_as_running_text(loaded, route):
    _check_kind(loaded, "sentencepiece-unigram", route)


@pytest.mark.parametrize("route", ROUTES)
def test_spm_model_alone_converts_and_pre_split_words_tokenise_as_running_text(loaded, route):
    """DeBERTa-v3 ships spm.model and no tokenizer.json: the tokenizer transformers converts at load is
    sentencepiece's own, piece for piece."""
    import sentencepiece

    folder = tiny_model_path("deberta-v2")
    assert (folder / SPM_FILE).is_file() and not (folder / "tokenizer.json").exists()
    _check_kind(loaded, "spm-model", route)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / SPM_FILE))
    tokenizer = loaded("deberta-v2", route)
    assert _backend(tokenizer).get_vocab_size() == processor.get_piece_size()
    for words in SENTENCES[:3]:  # ASCII: sentencepiece's own NFKC normaliser is not the one converted
        text = " ".join(words)
        assert tokenizer([text], add_special_tokens=False)["input_ids"][0] == processor.encode(text), text


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_tiny_model_is_the_family_and_its_config_agrees_with_its_tokenizer(model_type):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(tiny_model_path(model_type)))
    tokenizer, _ = load_base_tokenizer(tiny_model_path(model_type))
    assert config.model_type == model_type
    assert (config.vocab_size, config.pad_token_id) == (len(tokenizer), tokenizer.pad_token_id)
    assert None not in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_training_decides_the_prefix_space_from_the_tokenizer(model_type):
    _, prefix_space = load_base_tokenizer(tiny_model_path(model_type))
    assert prefix_space == TINY[model_type].tokenizer.no_prefix_space


@pytest.mark.parametrize("model_type", [m for m in MODEL_TYPES if TINY[m].tokenizer.no_prefix_space])
def test_without_the_fix_pre_split_words_lose_their_prefix_space(model_type):
    """The tokenizer as AutoTokenizer loads it, untouched, encodes every pre-split word as if it continued the
    previous one -- so the checks above can fail, and the fix is what makes them pass."""
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(tiny_model_path(model_type)))
    problems = [p for words in SENTENCES for p in differences(plain, words)]
    assert any(p.startswith("words after the first") for p in problems), problems
    # ModernBERT's class ignores add_prefix_space at load: only the backend fix gives the prefix space
    if model_type == "modernbert":
        ignored = AutoTokenizer.from_pretrained(str(tiny_model_path(model_type)), add_prefix_space=True)
        assert [p for words in SENTENCES for p in differences(ignored, words)]


# -- the lone "▁" -----------------------------------------------------------------------------------------------
def _ner_spec(model_type: str, tokenizer: Any, prefix_space: bool) -> TaskSpec:
    return TaskSpec(task="ner", model_type=model_type, labels=("O", "B-ANIMAL", "B-LOC"), max_seq_length=32,
                    stride=4, add_prefix_space=prefix_space, word_start_ids=word_start_ids(_backend(tokenizer)))


@pytest.mark.parametrize("model_type", UNIGRAM)
@pytest.mark.parametrize("route", ROUTES)
def test_a_word_split_into_a_lone_marker_carries_its_label_on_the_next_piece(loaded, model_type, route):
    """SentencePiece splits a word it has no "▁word" piece for into "▁" + pieces; the lone "▁" is the same token
    for every such word, so the label goes on the piece after it: in training's labels, in serving's features,
    and in what decoding reads."""
    tokenizer = loaded(model_type, route)
    _, prefix_space = load_base_tokenizer(tiny_model_path(model_type))
    spec = _ner_spec(model_type, loaded(model_type, "training"), prefix_space)
    backend = _backend(tokenizer)
    assert spec.word_start_ids == (backend.token_to_id("▁"),)
    text = f"the {LONE_MARKER_WORD} flew to Tokyo"
    record = make_record("ner", False, {"text": text}, "O B-ANIMAL O O B-LOC")
    [train] = encode(spec, tokenizer, [record], with_labels=True)
    [serve] = encode(spec, tokenizer, [make_record("ner", False, {"text": text})])
    split = tokenizer([split_words(text)], is_split_into_words=True, add_special_tokens=False)
    pieces = [backend.id_to_token(i) for i, w in zip(split["input_ids"][0], split.word_ids(0)) if w == 1]
    assert pieces[0] == "▁" and len(pieces) > 1, pieces  # the word really splits into a lone marker + pieces
    marker = 1 + split.word_ids(0).index(1)  # its position in the feature, after the first special token
    assert train.first_of_word[marker] is None and train.first_of_word[marker + 1] == 1
    assert train.labels[marker] == IGNORE_INDEX and train.labels[marker + 1] == 1  # B-ANIMAL
    assert serve.input_ids == train.input_ids and serve.first_of_word == train.first_of_word
    assert [w for w in serve.first_of_word if w is not None] == [0, 1, 2, 3, 4]  # one labelled token per word
    # logits that say O on the lone marker and B-ANIMAL on the piece after it: decoding must read the latter
    logits = np.zeros((len(serve), 3))
    logits[:, 0] = 5.0
    logits[marker + 1] = [0.0, 5.0, 0.0]
    [pred] = decode_ner(spec, [record], [serve], [logits])
    assert pred["pred"] == ["O", "B-ANIMAL", "O", "O", "O"]
