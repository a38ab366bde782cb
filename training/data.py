"""Reading and validating the three tab-separated files, before any model is loaded.

Every row of ``train.csv``, ``dev.csv`` and ``test.csv`` is checked; all problems (up to a cap) are reported
together, each naming the file, the line, the column and what was expected, so one run shows everything that
needs fixing. Parsing of each field is the task layer's, so serving applies the same rules to requests.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tasks.errors import RecordError
from tasks.fields import Label, Record
from tasks.kinds import TASKS, TaskKind, task_kind
from tasks.records import make_record

SPLITS = ("train", "dev", "test")
MAX_PROBLEMS = 50

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents are legitimate text


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f", line {self.line}" if self.line else "")
        where += f", column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


class DataError(ValueError):
    """The data folder has problems; ``problems`` lists them, ``str()`` prints them one per line."""

    def __init__(self, problems: list[Problem], truncated: bool = False) -> None:
        self.problems = problems
        self.truncated = truncated
        lines = [str(p) for p in problems]
        if truncated:
            lines.append(f"... stopped after {len(problems)} problems")
        super().__init__("invalid training data:\n" + "\n".join(lines))


@dataclass
class Dataset:
    train: list[Record]
    dev: list[Record]
    test: list[Record]
    labels: tuple[str, ...]


def gold_label(record: Record) -> Label:
    """The label of a record read from a data file (``load_dataset`` parses one from every row's labels column)."""
    if record.label is None:
        raise ValueError(f"record {record.text[:40]!r} has no label: only records of a data file carry one")
    return record.label


class _Collector:
    def __init__(self, cap: int) -> None:
        self.problems: list[Problem] = []
        self.cap = cap
        self.truncated = False

    def add(self, file: str, line: int | None, column: str | None, message: str) -> None:
        if len(self.problems) >= self.cap:
            self.truncated = True
            return
        self.problems.append(Problem(file, line, column, message))


def _read_rows(path: Path, problems: _Collector, required: tuple[str, ...], optional: tuple[str, ...]
               ) -> list[tuple[int, dict[str, str]]]:
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.add(name, None, None, f"cannot be read: {exc.strerror or exc}")
        return []
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.add(name, line, None, f"is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})")
        return []
    # only \n (and \r\n) end a row: str.splitlines() would also cut text at U+2028, form feeds and the like
    lines = [line[:-1] if line.endswith("\r") else line for line in content.split("\n")]
    if not lines or not lines[0].strip():
        columns = ", ".join(required[:-1]) + f" and {required[-1]}"
        problems.add(name, 1, None, f"is empty; expected a header row with columns {columns}")
        return []
    # QUOTE_NONE: quotes are ordinary characters in text and are parsed per column by the task layer
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [h.strip() for h in next(reader)]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.add(name, 1, None, f"column(s) {repeated} appear more than once in the header")
        return []
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in (*required, *optional)]
    if missing or unknown:
        detail = (f"missing column(s) {missing}" if missing else "") + (
            ("; " if missing else "") + f"unknown column(s) {unknown}" if unknown else "")
        problems.add(name, 1, None, f"{detail}; expected tab-separated columns {', '.join(required)}"
                                    f"{''.join(f' and optionally {c}' for c in optional)}")
        return []
    rows, seen_rows = [], 0
    for offset, values in enumerate(_rows_or_errors(reader, name, problems)):
        line = offset + 2
        if not values or all(not v.strip() for v in values):  # None: a row csv could not split
            continue  # blank lines (e.g. a trailing newline) carry nothing
        seen_rows += 1
        if len(values) != len(header):
            hint = "is there a tab inside the text?" if len(values) > len(header) else \
                "is a column missing, or separated by spaces instead of a tab?"
            problems.add(name, line, None, f"has {len(values)} tab-separated fields, expected {len(header)} "
                                           f"({', '.join(header)}); {hint}")
            continue
        rows.append((line, dict(zip(header, values))))
    if not seen_rows:
        problems.add(name, 2, None, "has a header but no data rows")
    return rows


def _rows_or_errors(reader: Iterator[list[str]], name: str, problems: _Collector) -> Iterator[list[str] | None]:
    """csv rows; a row csv cannot split (a lone carriage return inside a text) is reported with its line."""
    line = 1
    while True:
        line += 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(name, line, "text", f"cannot be split into columns ({exc}); "
                                             "is there a stray carriage return inside the text?")
            yield None


def _columns(kind: TaskKind, use_bbox: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The required and the optional columns of a data file for this task."""
    required = (*kind.inputs, "labels", *(("bbox",) if use_bbox else ()))
    return required, ("bbox",) if kind.takes_bbox and not use_bbox else ()


def load_dataset(folder: str | Path, task: str | TaskKind, use_bbox: bool = False, max_problems: int = MAX_PROBLEMS
                 ) -> Dataset:
    """Parse and validate the three files; raise DataError listing every problem (up to ``max_problems``).
    ``task``: its row, where the caller resolved it already, or its name."""
    folder = Path(folder)
    kind = task if isinstance(task, TaskKind) else task_kind(task)
    task = kind.name
    if use_bbox and not kind.takes_bbox:
        raise DataError([Problem("use_bbox", None, None, f"task {task} reads no word boxes; train without use_bbox")])
    problems = _Collector(max_problems)
    splits = {split: _read_split(folder, split, kind, use_bbox, problems) for split in SPLITS}
    seen = {n for _, r in splits["train"] for n in kind.label_names(gold_label(r))} | set(kind.implicit_labels)
    # with train.csv itself broken, "never seen in train" would flag every dev/test label for nothing
    train_ok = not any(p.file == "train.csv" for p in problems.problems)
    for split in ("dev", "test") if train_ok else ():
        for line, record in splits[split]:
            unseen = sorted(set(kind.label_names(gold_label(record))) - seen)
            if unseen:
                problems.add(f"{split}.csv", line, "labels", f"label(s) {unseen} never appear in train.csv")
    if problems.problems:
        raise DataError(problems.problems, problems.truncated)
    if len(seen) < kind.min_labels:
        raise DataError([Problem("train.csv", None, "labels",
                                 f"{task} needs at least {kind.min_labels} classes, found {sorted(seen)}")])
    return Dataset(
        train=[r for _, r in splits["train"]], dev=[r for _, r in splits["dev"]],
        test=[r for _, r in splits["test"]], labels=kind.order_labels(seen),
    )


def _read_split(folder: Path, split: str, kind: TaskKind, use_bbox: bool, problems: _Collector
                ) -> list[tuple[int, Record]]:
    """The valid records of one file with their line numbers; every invalid one is reported to ``problems``."""
    path = folder / f"{split}.csv"
    if not path.is_file():
        problems.add(path.name, None, None, f"is missing from {folder}")
        return []
    parsed = []
    rows = _read_rows(path, problems, *_columns(kind, use_bbox))
    for line, values in rows:
        try:
            parsed.append((line, make_record(kind, use_bbox, values, values["labels"])))
        except RecordError as exc:
            problems.add(path.name, line, exc.field, exc.message)
    _check_task_fits(path.name, kind.name, rows, problems)
    return parsed


def _check_task_fits(name: str, task: str, rows: list[tuple[int, dict[str, str]]], problems: _Collector) -> None:
    """A file whose every row is unmistakably another task's (NER tags loaded as classif labels) is refused:
    each tag sequence would otherwise become a class of its own, and training would succeed at nonsense."""
    for other in TASKS.values():
        if other.name != task and other.fits_row is not None and rows and all(other.fits_row(v) for _, v in rows):
            problems.add(name, rows[0][0], "labels", f"every row's labels look like {other.name} labels, not "
                                                     f"{task} labels; is the task right?")
