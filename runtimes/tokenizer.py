"""The serving tokenizer without transformers: the ``tokenizers`` library over the archive's ``tokenizer.json``.

Importing ``transformers.AutoTokenizer`` imports torch (transformers 5), which costs an ONNX worker ~0.5 GB and
seconds of start-up for a model it never runs. So ``make archive`` writes, for an ONNX archive, the backend
tokenizer exactly as transformers built it from the checkpoint (``serving_tokenizer_json``: the model-family
quirks such as RoBERTa's ``add_prefix_space`` already applied, truncation and padding off) and the special token
ids into ``tokenizer.json`` and ``special_token_ids.json``; ``ServingTokenizer`` answers the calls ``tasks`` makes
the way transformers' fast tokenizer answers them, from that file alone:

- ``tok(word_lists, is_split_into_words=True, add_special_tokens=False, truncation=False)`` with ``word_ids(i)``
- ``tok(texts, truncation=True, max_length=N)`` and ``tok(texts, text_pairs, truncation="longest_first",
  max_length=N, return_token_type_ids=True)``
- ``cls_token_id``, ``sep_token_id``, ``pad_token_id``

``tests/unit/runtimes/test_tokenizer.py`` holds both to the same ids, word ids and token type ids.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

#: the file ``make archive`` writes beside tokenizer.json; its presence says the pair is the serving tokenizer
SPECIAL_IDS_FILE = "special_token_ids.json"
TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ("cls_token_id", "sep_token_id", "pad_token_id")
#: transformers' truncation arguments -> the tokenizers library's strategy names (True is longest_first there too)
STRATEGIES = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
              "only_second": "only_second"}
#: keyword arguments accepted and ignored: every encoding carries its token type ids and attention mask anyway
IGNORED = frozenset({"return_token_type_ids", "return_attention_mask"})


class Encoded(dict[str, list[list[int]]]):
    """What a call returns: ``input_ids``, ``token_type_ids``, ``attention_mask`` per row, and ``word_ids(i)``."""

    def __init__(self, encodings: list[Any]) -> None:
        super().__init__(input_ids=[e.ids for e in encodings], token_type_ids=[e.type_ids for e in encodings],
                         attention_mask=[e.attention_mask for e in encodings])
        self._encodings = encodings

    def word_ids(self, index: int) -> list[int | None]:
        """The word each token of row ``index`` comes from (None for special tokens), as transformers gives it."""
        word_ids: list[int | None] = self._encodings[index].word_ids
        return word_ids


class ServingTokenizer:
    """transformers' fast-tokenizer calls that ``tasks`` makes, answered by a ``tokenizers.Tokenizer``."""

    def __init__(self, backend: Any, cls_token_id: int, sep_token_id: int, pad_token_id: int) -> None:
        backend.no_truncation()
        backend.no_padding()  # padding is per micro-batch (tasks.batching.pad), never here
        self.backend = backend
        self.cls_token_id, self.sep_token_id, self.pad_token_id = cls_token_id, sep_token_id, pad_token_id

    @classmethod
    def from_dir(cls, path: str | Path) -> "ServingTokenizer":
        """The serving tokenizer ``make archive`` wrote into ``path``; FileNotFoundError when it wrote none."""
        from tokenizers import Tokenizer

        path = Path(path)
        for name in (TOKENIZER_FILE, SPECIAL_IDS_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path} has no {name}: not a serving tokenizer written by make archive")
        ids = json.loads((path / SPECIAL_IDS_FILE).read_text(encoding="utf-8"))
        missing = [name for name in SPECIAL_TOKENS if not isinstance(ids.get(name), int)]
        if missing:
            raise ValueError(f"{path / SPECIAL_IDS_FILE} lacks integer {missing}")
        return cls(Tokenizer.from_file(str(path / TOKENIZER_FILE)), *(ids[name] for name in SPECIAL_TOKENS))

    def __call__(self, text: Sequence[Any], text_pair: Sequence[str] | None = None, *,
                 is_split_into_words: bool = False, add_special_tokens: bool = True,
                 truncation: bool | str = False, max_length: int | None = None, **kwargs: Any) -> Encoded:
        unknown = sorted(set(kwargs) - IGNORED)
        if unknown:  # a call tasks started making that this adapter does not know: fail loudly, never guess
            raise TypeError(f"ServingTokenizer does not support {unknown}; it answers {sorted(IGNORED)} besides "
                            "text, text_pair, is_split_into_words, add_special_tokens, truncation, max_length")
        if isinstance(text, str) or (is_split_into_words and text and isinstance(text[0], str)):
            raise TypeError("ServingTokenizer takes a batch: a list of texts (or of word lists)")
        if text_pair is not None and len(text_pair) != len(text):
            raise ValueError(f"{len(text)} texts but {len(text_pair)} text pairs")
        self._truncate(truncation, max_length)
        inputs = list(zip(text, text_pair)) if text_pair is not None else list(text)
        return Encoded(self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens,
                                                 is_pretokenized=is_split_into_words))

    def _truncate(self, truncation: bool | str, max_length: int | None) -> None:
        if truncation is False or truncation == "do_not_truncate":
            self.backend.no_truncation()
            return
        if truncation not in STRATEGIES:
            raise ValueError(f"truncation={truncation!r} is not supported; expected one of "
                             f"{[False, *STRATEGIES]}")
        if max_length is None:
            raise ValueError("truncation needs max_length (the model's limit is not read here)")
        # the tokenizers library counts the special tokens the post-processor adds, as transformers relies on
        self.backend.enable_truncation(max_length, stride=0, strategy=STRATEGIES[truncation], direction="right")


def serving_tokenizer_json(tokenizer: Any) -> tuple[str, dict[str, int]]:
    """``tokenizer.json`` text and special token ids for a transformers fast tokenizer, as it tokenizes now.

    transformers 5 rebuilds parts of the backend from ``tokenizer_config.json`` and load-time arguments (BERT's
    normalizer, RoBERTa's ``add_prefix_space``), so the checkpoint's own tokenizer.json is not the tokenizer
    that ran in training: this is.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the caller's keeps its settings
    backend.no_truncation()
    backend.no_padding()
    ids = {name: getattr(tokenizer, name) for name in SPECIAL_TOKENS}
    missing = [name for name, value in ids.items() if not isinstance(value, int)]
    if missing:
        raise ValueError(f"the tokenizer has no {missing}; the encoder needs them")
    return backend.to_str(), ids


def load_serving_tokenizer(path: str | Path, prefix_space: bool) -> Any:
    """The archive's serving tokenizer, or transformers' (which imports torch) where the archive has none."""
    try:
        return ServingTokenizer.from_dir(path)
    except FileNotFoundError as exc:
        from runtimes.torch_runtime import load_tokenizer

        log.warning("%s; loading the tokenizer through transformers, which imports torch (re-run make archive to "
                    "serve without it)", exc)
        return load_tokenizer(path, prefix_space)


def write_serving_tokenizer(tokenizer: Any, dst: str | Path) -> None:
    """Write ``tokenizer`` (transformers) into ``dst`` as ``ServingTokenizer.from_dir`` reads it."""
    text, ids = serving_tokenizer_json(tokenizer)
    Path(dst, TOKENIZER_FILE).write_text(text, encoding="utf-8")
    Path(dst, SPECIAL_IDS_FILE).write_text(json.dumps(ids, indent=2), encoding="utf-8")
