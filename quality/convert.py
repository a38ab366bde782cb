"""Corpus formats -> our TSV folders (``train.csv``, ``dev.csv``, ``test.csv`` with ``text`` and ``labels``).

Neither source ships an official test split, so each corpus is split here, once, by a fixed seed (per class for
single-label classification, so every split keeps the class balance): the same rows on every machine.
"""
from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

#: train / dev / test shares; a large test split keeps seed-to-seed noise in the test metric small
FRACTIONS = (0.6, 0.1, 0.3)
SPLIT_SEED = 20240601
SPLITS = ("train", "dev", "test")
_SPACE = re.compile(r"\s+")


class ConvertError(ValueError):
    """A corpus file is not in the format its converter reads; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    """One record in our format: ``text`` and the ``labels`` cell exactly as the TSV holds it."""

    text: str
    labels: str


def read_conll(text: str, source: str) -> list[tuple[list[str], list[str]]]:
    """``word<TAB>tag`` lines (extra middle columns allowed), sentences separated by blank lines."""
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.split(" ")
        tag = parts[-1].strip()
        if len(parts) < 2 or not (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
            raise ConvertError(f"{source}, line {number}: expected 'word<TAB>tag' with a BIO tag "
                               f"(O, B-TYPE, I-TYPE), got {line[:60]!r}")
        # a word holding whitespace (a non-breaking space in a tweet) would become two words in our format
        word = _SPACE.sub("_", parts[0].strip()) or "_"
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise ConvertError(f"{source}: no sentences found")
    return sentences


def ner_rows(sentences: Sequence[tuple[list[str], list[str]]]) -> list[Row]:
    """One NER row per sentence: space-separated words and one BIO label per word."""
    return [Row(" ".join(words), " ".join(tags)) for words, tags in sentences]


def entity_type_rows(sentences: Sequence[tuple[list[str], list[str]]]) -> list[Row]:
    """A multilabel view of an NER corpus: a sentence's labels are the entity types it mentions (maybe none)."""
    rows = []
    for words, tags in sentences:
        types = sorted({tag[2:] for tag in tags if tag != "O"})
        rows.append(Row(" ".join(words), ",".join(f'"{t}"' for t in types)))
    return rows


def one_line(text: str) -> str:
    """A document as one TSV cell: tabs and line breaks become single spaces."""
    return _SPACE.sub(" ", text).strip()


def decode_text(raw: bytes) -> str:
    """UTF-8, or Latin-1 for the odd older file (the BBC corpus has one with a raw pound sign)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def folder_docs(files: dict[str, bytes], prefix: str) -> list[Row]:
    """``<prefix><class>/<doc>.txt`` files -> one classification row per document, labelled by its folder."""
    rows = []
    for name, raw in files.items():
        rest = name[len(prefix):].split("/")
        if len(rest) != 2 or not rest[1].endswith(".txt"):
            continue  # code or metadata beside the documents
        text = one_line(decode_text(raw))
        if text:
            rows.append(Row(text, rest[0]))
    if len({r.labels for r in rows}) < 2:
        raise ConvertError(f"{prefix}: expected <class>/<doc>.txt documents in at least two classes")
    return rows


def split(rows: Sequence[Row], group: Callable[[Row], str] | None = None, seed: int = SPLIT_SEED
          ) -> dict[str, list[Row]]:
    """Deterministic train/dev/test by ``FRACTIONS``; with ``group``, each group is split on its own."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[group(row) if group else ""].append(row)
    out: dict[str, list[Row]] = {s: [] for s in SPLITS}
    rng = random.Random(seed)
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        n_train = round(len(members) * FRACTIONS[0])
        n_dev = round(len(members) * FRACTIONS[1])
        out["train"] += members[:n_train]
        out["dev"] += members[n_train:n_train + n_dev]
        out["test"] += members[n_train + n_dev:]
    for name in SPLITS:
        rng.shuffle(out[name])  # interleave the classes again
    return out


def _label_names(task: str, labels: str) -> set[str]:
    if task == "ner":
        return set(labels.split())
    if task == "classif":
        return {labels}
    return {part.strip('"') for part in labels.split(",") if part}


def subset(splits: dict[str, list[Row]], task: str, sizes: dict[str, int]) -> dict[str, list[Row]]:
    """The first rows of each split (a smoke run); dev/test rows with a label train lacks are skipped, since
    training refuses a label it never saw."""
    train = splits["train"][: sizes["train"]]
    seen = set().union(*(_label_names(task, r.labels) for r in train)) | {"O"}
    out = {"train": train}
    for name in ("dev", "test"):
        kept = [r for r in splits[name] if _label_names(task, r.labels) <= seen]
        out[name] = kept[: sizes[name]]
    return out


def write_folder(splits: dict[str, list[Row]], folder: Path) -> None:
    """The three TSV files our loader reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        lines = ["text\tlabels"] + [f"{r.text}\t{r.labels}" for r in splits[name]]
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
