"""Tiny random models of each supported family, with tokenizers of the family's real kind made locally -- never
downloaded.

Each ``make_base_model`` call writes a ``save_pretrained`` directory (config, safetensors weights, tokenizer)
that training loads through ``model_name=<path>``, exactly as it would load a hub model. Every tokenizer is the
kind the family's hub checkpoints ship, laid out as they ship it, so that the quirks the task layer must handle
are really there:

- WordPiece (BERT, DistilBERT, LayoutLM, ELECTRA; MPNet with RoBERTa's ``<s> </s>`` specials);
- byte-level BPE: with a prefix space (Longformer, as the tests always had it), without one as ``roberta-base``'s
  own tokenizer.json has it (fixed at load by the RoBERTa class's option), and without one in a plain fast
  tokenizer as ModernBERT ships it (the class ignores the option: fixed on the backend);
- SentencePiece Unigram with Metaspace (XLM-R, CamemBERT, ALBERT as ``tokenizer.json``; DeBERTa-v3 as an
  ``spm.model`` alone, which transformers converts at load).
"""
from __future__ import annotations

import inspect
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

WORDS = sorted(set("""
the a an of in on to and or is was were be been with for from by at as it this that these those not no yes
joined last year opened new office according will hire fifty engineers flew monday board met yesterday sales
grew while struggled said weather terrible nobody expected meeting end so early signed partnership near we
visited during spring alice martin bob chen carla diaz david okafor emma novak farid haddad grace kim hugo
silva ines moreau jonas berg keiko tanaka liam walsh maya patel nora schmidt acme corp globex initech umbrella
health stark industries wayne logistics hooli vandelay imports soylent foods tyrell systems paris berlin lagos
tokyo toronto lima oslo mumbai sydney nairobi seattle team won final match review price quality delivery
service hotel meal film concert flight book good bad great awful fine okay really truly absolutely bit
sports business technology long text word words
""".split()))
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,:;!?'\"-()"
#: what the subword tokenizers are trained on: the words in running text, alone, and capitalised
CORPUS = [" ".join(WORDS), *WORDS, *(w.capitalize() for w in WORDS)]
#: the characters the tests' texts are made of: SentencePiece keeps a piece for each, so none is <unk>
ALPHABET = sorted(set(CHARS) | {c.upper() for c in CHARS})
#: the size of the tiny models, as every family names it
COMMON = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
          "max_position_embeddings": 512}
#: the config fields that name special tokens, and the tokenizer attribute each takes its id from
SPECIAL_IDS = {"pad_token_id": "pad_token_id", "bos_token_id": "cls_token_id", "eos_token_id": "sep_token_id",
               "cls_token_id": "cls_token_id", "sep_token_id": "sep_token_id"}


# -- WordPiece -----------------------------------------------------------------------------------------------------
def _wordpiece_vocab(specials: list[str], tail: tuple[str, ...] = ()) -> dict[str, int]:
    vocab = [*specials, *WORDS, *CHARS, *(f"##{c}" for c in CHARS), *tail]
    return {token: i for i, token in enumerate(dict.fromkeys(vocab))}


def _wordpiece_tokenizer(folder: Path) -> Any:
    from transformers import BertTokenizer

    # transformers 5 takes the vocab itself, not a path
    return BertTokenizer(vocab=_wordpiece_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]), do_lower_case=True)


def _mpnet_tokenizer(folder: Path) -> Any:
    from transformers import MPNetTokenizer

    # microsoft/mpnet-base's layout: RoBERTa's specials first, BERT's [UNK] among them, <mask> last
    vocab = _wordpiece_vocab(["<s>", "<pad>", "</s>", "<unk>", "[UNK]"], tail=("<mask>",))
    return MPNetTokenizer(vocab=vocab, do_lower_case=True)


# -- byte-level BPE ------------------------------------------------------------------------------------------------
def _byte_level_bpe(folder: Path, prefix_space: bool, specials: list[str]) -> tuple[dict[str, int], list[Any], Any]:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=prefix_space)
    bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=1, special_tokens=specials, show_progress=False)
    bpe.save_model(str(folder))
    # transformers 5 takes the vocab and merges themselves (a path would be read as an empty vocab)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    return vocab, merges, bpe


def _roberta_style_bpe(prefix_space: bool) -> Callable[[Path], Any]:
    def build(folder: Path) -> Any:
        from transformers import RobertaTokenizer

        vocab, merges, _ = _byte_level_bpe(folder, prefix_space, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        return RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=prefix_space)

    return build


#: ModernBERT's special tokens (BERT's), by the tokenizer attribute each is
MODERNBERT_SPECIALS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                       "mask_token": "[MASK]"}


def _modernbert_tokenizer(folder: Path) -> None:
    """A byte-level BPE without a prefix space, saved as a plain fast tokenizer: ModernBERT's released layout
    (tokenizer.json alone, ``tokenizer_class`` PreTrainedTokenizerFast)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    _, _, bpe = _byte_level_bpe(folder, False, list(MODERNBERT_SPECIALS.values()))
    for name in ("vocab.json", "merges.txt"):
        (folder / name).unlink()
    backend = bpe._tokenizer  # the tokenizers.Tokenizer the implementation wraps
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    PreTrainedTokenizerFast(tokenizer_object=backend, **MODERNBERT_SPECIALS).save_pretrained(str(folder))
    config_file = folder / "tokenizer_config.json"
    # transformers 5 writes its own name for the class; the hub's file names the transformers 4 one
    config = {**json.loads(config_file.read_text(encoding="utf-8")), "tokenizer_class": "PreTrainedTokenizerFast"}
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")


# -- SentencePiece Unigram -----------------------------------------------------------------------------------------
def _train_spm(corpus: list[str], **options: Any) -> bytes:
    """A serialised SentencePiece Unigram model over ``corpus`` (the trainer is deterministic, unlike the
    tokenizers library's Unigram trainer, whose scores vary from run to run)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=400, model_type="unigram",
        hard_vocab_limit=False, character_coverage=1.0, required_chars="".join(ALPHABET), minloglevel=2,
        num_threads=1, **options)
    return model.getvalue()


def _unigram_pieces(lowercase: bool = False) -> list[tuple[str, float]]:
    """(piece, score) of a SentencePiece Unigram model, its unknown piece left out: each family puts its own
    specials (its own <unk> among them) before the pieces, as the family's converted spm model has them."""
    import sentencepiece

    corpus = [t.lower() for t in CORPUS] if lowercase else CORPUS
    spm = sentencepiece.SentencePieceProcessor(model_proto=_train_spm(corpus, bos_id=-1, eos_id=-1))
    return [(spm.id_to_piece(i), spm.get_score(i)) for i in range(spm.get_piece_size())
            if not (spm.is_unknown(i) or spm.is_control(i))]


def _specials(*names: str) -> list[tuple[str, float]]:
    return [(name, 0.0) for name in names]


def _xlm_roberta_tokenizer(folder: Path) -> Any:
    from transformers import XLMRobertaTokenizer

    # xlm-roberta-base's layout (the class takes <unk> at id 3): fairseq's four specials, <mask> last
    vocab = [*_specials("<s>", "<pad>", "</s>", "<unk>"), *_unigram_pieces(), *_specials("<mask>")]
    return XLMRobertaTokenizer(vocab=vocab)


def _camembert_tokenizer(folder: Path) -> Any:
    from transformers import CamembertTokenizer

    # camembert-base's layout: the unused fairseq specials first, then the real <s> </s>, <mask> last
    vocab = [*_specials("<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>"), ("<unk>NOTUSED", -100.0),
             *_specials("<s>", "</s>"), *_unigram_pieces(), *_specials("<mask>")]
    return CamembertTokenizer(vocab=vocab)


def _albert_tokenizer(folder: Path) -> Any:
    from transformers import AlbertTokenizer

    # albert-base-v2's spiece layout (the class takes <unk> at id 1); it lowercases, so its pieces are lowercase
    vocab = [*_specials("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), *_unigram_pieces(lowercase=True)]
    return AlbertTokenizer(vocab=vocab)


#: DeBERTa-v3's spm.model layout: [PAD] [CLS] [SEP] control symbols, then [UNK]; [MASK] a user-defined piece
DEBERTA_SPM = {"pad_id": 0, "pad_piece": "[PAD]", "bos_id": 1, "bos_piece": "[CLS]", "eos_id": 2,
               "eos_piece": "[SEP]", "unk_id": 3, "unk_piece": "[UNK]", "user_defined_symbols": ["[MASK]"]}
SPM_FILE = "spm.model"


def _deberta_v3_tokenizer(folder: Path) -> None:
    """Only ``spm.model`` and the tokenizer_config.json DeBERTa-v3 ships: no tokenizer.json, so transformers must
    convert the SentencePiece model at load (with ``sentencepiece`` and ``protobuf``)."""
    (folder / SPM_FILE).write_bytes(_train_spm(CORPUS, **DEBERTA_SPM))
    config = {"do_lower_case": False, "vocab_type": "spm"}  # no tokenizer_class: the model_type names it
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


#: the kinds of tokenizer the families ship (``Shipped.kind``)
KINDS = ("wordpiece", "byte-level-bpe", "sentencepiece-unigram", "spm-model")


@dataclass(frozen=True)
class Shipped:
    """A tokenizer as a family's hub checkpoints ship it."""

    #: one of ``KINDS``
    kind: str
    #: writes the tokenizer's own files into the folder and returns a tokenizer to ``save_pretrained`` there, or
    #: None where it wrote the files the family ships itself
    build: Callable[[Path], Any]
    #: as shipped, it gives pre-split words no prefix space (training must add one)
    no_prefix_space: bool = False


WORDPIECE = Shipped("wordpiece", _wordpiece_tokenizer)


@dataclass(frozen=True)
class Tiny:
    """How one family's tiny model is made."""

    config_class: str
    tokenizer: Shipped
    #: config fields beyond ``COMMON``, the vocabulary size and the special token ids
    config: dict[str, Any] = field(default_factory=dict)


#: the tiny model of each family (``config.model_type`` -> how it is made)
TINY: dict[str, Tiny] = {
    "bert": Tiny("BertConfig", WORDPIECE),
    "distilbert": Tiny("DistilBertConfig", WORDPIECE, {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    "longformer": Tiny("LongformerConfig", Shipped("byte-level-bpe", _roberta_style_bpe(True)),
                       {"attention_window": [8, 8], "type_vocab_size": 1, "max_position_embeddings": 1026}),
    "layoutlm": Tiny("LayoutLMConfig", WORDPIECE, {"max_2d_position_embeddings": 1024}),
    # roberta-base's own tokenizer.json has no prefix space; the RoBERTa class adds it when asked at load
    "roberta": Tiny("RobertaConfig", Shipped("byte-level-bpe", _roberta_style_bpe(False), no_prefix_space=True),
                    {"type_vocab_size": 1, "max_position_embeddings": 514}),
    "xlm-roberta": Tiny("XLMRobertaConfig", Shipped("sentencepiece-unigram", _xlm_roberta_tokenizer),
                        {"type_vocab_size": 1, "max_position_embeddings": 514}),
    "camembert": Tiny("CamembertConfig", Shipped("sentencepiece-unigram", _camembert_tokenizer),
                      {"type_vocab_size": 1, "max_position_embeddings": 514}),
    # DeBERTa-v3: relative attention only (no absolute positions, no token types), as microsoft/deberta-v3-base
    "deberta-v2": Tiny("DebertaV2Config", Shipped("spm-model", _deberta_v3_tokenizer),
                       {"relative_attention": True, "position_buckets": 16, "pos_att_type": ["p2c", "c2p"],
                        "position_biased_input": False, "norm_rel_ebd": "layer_norm", "share_att_key": True,
                        "type_vocab_size": 0}),
    # one global and one sliding-window layer, the window small enough that a test text crosses it
    "modernbert": Tiny("ModernBertConfig", Shipped("byte-level-bpe", _modernbert_tokenizer, no_prefix_space=True),
                       {"max_position_embeddings": 8192, "global_attn_every_n_layers": 2, "local_attention": 16}),
    "electra": Tiny("ElectraConfig", WORDPIECE, {"embedding_size": 16}),
    "albert": Tiny("AlbertConfig", Shipped("sentencepiece-unigram", _albert_tokenizer), {"embedding_size": 16}),
    # relative_attention_num_buckets stays 32: MPNet's position bias computes its buckets for 32 whatever the config
    "mpnet": Tiny("MPNetConfig", Shipped("wordpiece", _mpnet_tokenizer), {"max_position_embeddings": 514}),
}


def families_of(kind: str) -> tuple[str, ...]:
    """The families whose tiny tokenizer is of ``kind``."""
    return tuple(family for family, tiny in TINY.items() if tiny.tokenizer.kind == kind)


def _load_written_tokenizer(folder: Path, model_type: str) -> Any:
    from transformers import AutoTokenizer

    # a config naming the family is what AutoTokenizer resolves the class from, as for a hub checkpoint
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    finally:
        (folder / "config.json").unlink()


def make_base_model(model_type: str, folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``model_type`` model and its tokenizer to ``folder``; return the folder."""
    import torch
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tiny = TINY[model_type]
    tokenizer = tiny.tokenizer.build(folder)
    written = tokenizer is None
    if written:
        tokenizer = _load_written_tokenizer(folder, model_type)
    config_class = getattr(transformers, tiny.config_class)
    takes = inspect.signature(config_class.__init__).parameters
    # the ids the tokenizer gives its special tokens, wherever the config has a field for them
    ids = {name: getattr(tokenizer, attr) for name, attr in SPECIAL_IDS.items()
           if name in takes and getattr(tokenizer, attr) is not None}
    config = config_class(**{**COMMON, **tiny.config, **ids, "vocab_size": len(tokenizer)})
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(str(folder))
    if not written:
        tokenizer.save_pretrained(str(folder))
    (folder / "tiny.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return folder
