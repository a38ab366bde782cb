"""The torch-free serving tokenizer answers every call ``tasks`` makes exactly as transformers' fast tokenizer does."""
from __future__ import annotations

import json
import random

import pytest

from runtimes.tokenizer import SPECIAL_IDS_FILE, TOKENIZER_FILE, ServingTokenizer, write_serving_tokenizer
from tasks.fields import split_words
from tests.helpers.fixtures_tokenizers import MODEL_TYPES, minilm_tokenizer, tiny_tokenizer

TEXTS = [
    "the team won the final match", "Alice Martin joined ACME Corp last year.", "sales grew, while Globex struggled!",
    "  leading and trailing   spaces  ", "tabs\tand\nnewlines\r\nhere",
    "Café naïve résumé façade – “quotes” — ok", "東京 に 行きました 北京欢迎你", "emoji 😀🚀 and symbols ©®™ ½ ∑",
    "ǅemo ﬁne ＦＵＬＬＷＩＤＴＨ", "Straße İstanbul ΣΊΣΥΦΟΣ",
    "zero\u200bwidth\u00a0nbsp soft\u00adhyphen", "x", "12,345.67 and -8.9e10 (approx.)", "[CLS] [SEP] <s> </s> [MASK]",
    "don't won't it's O'Neil's", "a" * 300, "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def _corpus(seed: int = 0) -> list[str]:
    """TEXTS plus long texts made of them, far over every max_length used below."""
    rng = random.Random(seed)
    words = [w for t in TEXTS for w in t.split()]
    return [*TEXTS, *(" ".join(rng.choice(words) for _ in range(n)) for n in (40, 200, 700))]


@pytest.fixture(scope="module", params=[*MODEL_TYPES, "minilm"])
def both(request, tmp_path_factory):
    """(transformers tokenizer, the serving tokenizer ``make archive`` writes from it)."""
    reference = minilm_tokenizer() if request.param == "minilm" else tiny_tokenizer(request.param)
    folder = tmp_path_factory.mktemp(f"serving-tokenizer-{request.param}")
    write_serving_tokenizer(reference, folder)
    return reference, ServingTokenizer.from_dir(folder)


def test_special_token_ids_are_the_same(both):
    reference, ours = both
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id) == \
           (reference.cls_token_id, reference.sep_token_id, reference.pad_token_id)


def test_pre_split_words_give_the_same_ids_and_word_ids(both):
    reference, ours = both
    word_lists = [split_words(t) for t in _corpus()]
    kwargs = dict(is_split_into_words=True, add_special_tokens=False, truncation=False)
    expected, got = reference(word_lists, **kwargs), ours(word_lists, **kwargs)
    assert got["input_ids"] == expected["input_ids"]
    assert [got.word_ids(i) for i in range(len(word_lists))] == \
           [expected.word_ids(i) for i in range(len(word_lists))]
    assert max(len(ids) for ids in got["input_ids"]) > 512  # no truncation, even where tokenizer.json had one


@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_truncated_texts_give_the_same_ids(both, max_length):
    reference, ours = both
    texts = _corpus()
    expected, got = reference(texts, truncation=True, max_length=max_length), ours(texts, truncation=True,
                                                                                      max_length=max_length)
    assert got["input_ids"] == expected["input_ids"]
    assert max(len(ids) for ids in got["input_ids"]) == max_length


@pytest.mark.parametrize("truncation", [True, "longest_first", "only_second"])
@pytest.mark.parametrize("max_length", [16, 64])
def test_sentence_pairs_give_the_same_ids_and_token_type_ids(both, truncation, max_length):
    reference, ours = both
    corpus = _corpus(1)
    short = ["the", "team won", "Café"]  # only_second fails outright on a first text that alone exceeds the limit
    firsts = corpus if truncation != "only_second" else [short[i % 3] for i in range(len(corpus))]
    seconds = list(reversed(corpus))
    kwargs = dict(truncation=truncation, max_length=max_length, return_token_type_ids=True)
    expected, got = reference(firsts, seconds, **kwargs), ours(firsts, seconds, **kwargs)
    assert got["input_ids"] == expected["input_ids"]
    assert got["token_type_ids"] == expected["token_type_ids"]
    assert got["attention_mask"] == expected["attention_mask"]


def test_an_unknown_argument_is_refused_by_name(both):
    _, ours = both
    with pytest.raises(TypeError) as info:
        ours(["a text"], padding=True)
    assert "does not support ['padding']" in str(info.value)


def test_truncation_without_max_length_is_refused(both):
    _, ours = both
    with pytest.raises(ValueError, match="truncation needs max_length"):
        ours(["a text"], truncation=True)


def test_a_folder_without_the_serving_files_says_which_is_missing(tmp_path, both):
    reference, _ = both
    with pytest.raises(FileNotFoundError, match=f"has no {TOKENIZER_FILE}"):
        ServingTokenizer.from_dir(tmp_path)
    write_serving_tokenizer(reference, tmp_path)
    (tmp_path / SPECIAL_IDS_FILE).write_text(json.dumps({"cls_token_id": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks integer \['sep_token_id', 'pad_token_id'\]"):
        ServingTokenizer.from_dir(tmp_path)
