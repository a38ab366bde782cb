"""Tiny random models of each supported architecture, with tokenizers made locally -- never downloaded.

Each ``make_base_model`` call writes a ``save_pretrained`` directory (config, safetensors weights, tokenizer)
that training loads through ``model_name=<path>``, exactly as it would load a hub model.
"""
from __future__ import annotations

import json
from pathlib import Path

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

CONFIGS = {
    "bert": ("BertConfig", {}),
    "distilbert": ("DistilBertConfig", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    "longformer": ("LongformerConfig", {"attention_window": [8, 8], "pad_token_id": 1, "bos_token_id": 0,
                                         "eos_token_id": 2, "type_vocab_size": 1, "max_position_embeddings": 1026}),
    "layoutlm": ("LayoutLMConfig", {"max_2d_position_embeddings": 1024}),
}
COMMON = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
          "max_position_embeddings": 512}


def _wordpiece_tokenizer(folder: Path):
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *CHARS, *(f"##{c}" for c in CHARS)]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    return BertTokenizer(vocab=ids, do_lower_case=True)  # transformers 5 takes the vocab itself, not a path


def _bpe_tokenizer(folder: Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    corpus = [" ".join(WORDS), *WORDS, *(w.capitalize() for w in WORDS)]
    bpe.train_from_iterator(corpus, vocab_size=600, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    # transformers 5 takes the vocab and merges themselves (a path would be read as an empty vocab)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    return RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=True)


def make_base_model(model_type: str, folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``model_type`` model and its tokenizer to ``folder``; return the folder."""
    import torch
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _bpe_tokenizer(folder) if model_type == "longformer" else _wordpiece_tokenizer(folder)
    class_name, extra = CONFIGS[model_type]
    params = {**COMMON, **extra, "vocab_size": len(tokenizer)}
    config = getattr(transformers, class_name)(**params)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    (folder / "tiny.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return folder
