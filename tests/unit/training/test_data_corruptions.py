"""Training data corruptions: what a damaged tab-separated file does to ``train``.

Each corruption is applied at a random (seeded) line of a random file of a random example folder. Rejected ones
must be reported with the file and the line, before any model loads; accepted ones (quotes, CRLF, a BOM, blank
lines) must parse to the same records as the clean file. Most cases call ``training.data.load_dataset`` directly
(milliseconds each); a few go through the real ``python -m entrypoints train`` contract (fake /opt/ml): non-zero
exit, the reason in ``/opt/ml/output/failure`` naming file and line, and nothing in ``/opt/ml/model``.
"""
from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import EXAMPLES
from training.data import SPLITS, DataError, load_dataset

#: (example folder, task, use_bbox)
FOLDERS = [("classif", "classif", False), ("ner", "ner", False), ("multilabel-classif", "multilabel-classif", False),
           ("regression", "regression", False), ("layoutlm-ner", "ner", True)]
SEEDS = range(3)

Lines = list[bytes]


@dataclass(frozen=True)
class Corruption:
    """``apply(lines, index, rng)`` damages ``lines`` (no line endings; 0 is the header) at data line ``index``
    and returns the 1-based line that must be reported, or None for a corruption that is accepted."""

    name: str
    apply: Callable[[Lines, int, random.Random], int | None]
    message: str = ""  # what the report must say about it


def _text_positions(line: bytes) -> list[int]:
    """Offsets of the spaces inside the text column (between two words)."""
    text = line.split(b"\t", 1)[0]
    return [i for i, c in enumerate(text) if c == 0x20] or [len(text) // 2]


def _tab_in_text(lines: Lines, i: int, rng: random.Random) -> int:
    at = rng.choice(_text_positions(lines[i]))
    lines[i] = lines[i][:at] + b"\t" + lines[i][at + 1:]
    return i + 1


def _missing_column(lines: Lines, i: int, rng: random.Random) -> int:
    lines[i] = lines[i].rsplit(b"\t", 1)[0]
    return i + 1


def _extra_column(lines: Lines, i: int, rng: random.Random) -> int:
    lines[i] += b"\t" + rng.choice([b"extra", b"", b"O"])
    return i + 1


def _non_utf8(lines: Lines, i: int, rng: random.Random) -> int:
    at = rng.randrange(len(lines[i]))
    lines[i] = lines[i][:at] + rng.choice([b"\xff", b"\xe9", b"\xc3\x28", b"\x80"]) + lines[i][at:]
    return i + 1


def _truncated(lines: Lines, i: int, rng: random.Random) -> int:
    """The file ends in the middle of row ``i``'s text (an interrupted copy)."""
    cut = rng.randrange(1, len(lines[i].split(b"\t", 1)[0]))
    del lines[i + 1:]
    lines[i] = lines[i][:cut]
    return i + 1


def _empty_file(lines: Lines, i: int, rng: random.Random) -> int:
    lines[:] = []
    return 1


def _header_only(lines: Lines, i: int, rng: random.Random) -> int:
    del lines[1:]
    return 2  # where the first row should have been


def _bad_header(lines: Lines, i: int, rng: random.Random) -> int:
    lines[0] = rng.choice([b"Text\tLabels", b"text;labels", b"text labels", b"txt\tlabels"]) + lines[0][11:]
    return 1


def _duplicate_column(lines: Lines, i: int, rng: random.Random) -> int:
    lines[0] += b"\tlabels"
    for k in range(1, len(lines)):
        if lines[k].strip():
            lines[k] += b"\t" + lines[k].split(b"\t")[1]
    return 1


def _lone_cr(lines: Lines, i: int, rng: random.Random) -> int:
    """A stray carriage return inside a text (pasted from an old Mac or a form field)."""
    at = rng.choice(_text_positions(lines[i]))
    lines[i] = lines[i][:at] + b"\r" + lines[i][at + 1:]
    return i + 1


def _quotes(lines: Lines, i: int, rng: random.Random) -> None:
    at = rng.choice(_text_positions(lines[i]))
    lines[i] = lines[i][:at] + rng.choice([b' "', b'" ', b' "quoted" ', b" 'a' ", b' ""']) + lines[i][at + 1:]
    return None


def _blank_lines(lines: Lines, i: int, rng: random.Random) -> None:
    lines[i:i] = [b"", b"   ", b""]
    return None


ACCEPTED = [Corruption("quotes inside text", _quotes), Corruption("blank lines in the middle", _blank_lines)]
REJECTED = [
    Corruption("tab inside text", _tab_in_text, "tab-separated fields, expected"),
    Corruption("missing column", _missing_column, "tab-separated fields, expected"),
    Corruption("extra column", _extra_column, "tab-separated fields, expected"),
    Corruption("non-UTF-8 byte", _non_utf8, "is not valid UTF-8"),
    Corruption("truncated last row", _truncated, "tab-separated fields, expected"),
    Corruption("empty file", _empty_file, "is empty; expected a header row"),
    Corruption("wrong header", _bad_header, "missing column(s)"),
]
#: rejected (or accepted) wrongly today: each test says what the report should be
#: once bugs, now regression tests: a header-only file is reported at line 2; a repeated column is refused
REJECTED_BUGS = [
    (Corruption("header only", _header_only, "no data rows"), "header-only file reported with its line"),
    (Corruption("duplicate column", _duplicate_column, "labels"), "a column named twice is refused"),
]
def _copy(folder: str, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for split in SPLITS:
        shutil.copy2(EXAMPLES / folder / f"{split}.csv", dst / f"{split}.csv")
    return dst


def _corrupt(data: Path, corruption: Corruption, seed: int) -> tuple[str, int | None]:
    """Apply ``corruption`` to a random row of a random file of ``data``; (file name, line to report)."""
    rng = random.Random(f"{corruption.name}-{seed}")
    path = data / f"{rng.choice(SPLITS)}.csv"
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    index = rng.randrange(1, len(lines))
    line = corruption.apply(lines, index, rng)
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    return path.name, line


def _pick_folder(corruption: Corruption, seed: int) -> tuple[str, str, bool]:
    return random.Random(f"folder-{corruption.name}-{seed}").choice(FOLDERS)


def _assert_reported(exc: DataError, file: str, line: int, message: str) -> None:
    mine = [p for p in exc.problems if p.file == file and p.line == line]
    assert mine, f"no problem reported for {file}, line {line}:\n{exc}"
    assert f"{file}, line {line}" in str(exc)
    assert any(message in p.message for p in mine), str(exc)


# -- the data layer, many random cases -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("corruption", REJECTED, ids=lambda c: c.name)
def test_a_rejected_corruption_names_file_and_line(tmp_path, corruption, seed):
    folder, task, bbox = _pick_folder(corruption, seed)
    data = _copy(folder, tmp_path / "data")
    file, line = _corrupt(data, corruption, seed)
    with pytest.raises(DataError) as info:
        load_dataset(data, task, bbox)
    _assert_reported(info.value, file, line, corruption.message)


@pytest.mark.parametrize("corruption", [pytest.param(c, id=c.name)
                                        for c, r in REJECTED_BUGS])
def test_corruptions_once_reported_wrongly(tmp_path, corruption):
    data = _copy("classif", tmp_path / "data")
    file, line = _corrupt(data, corruption, 0)
    with pytest.raises(DataError) as info:
        load_dataset(data, "classif")
    _assert_reported(info.value, file, line, corruption.message)


@pytest.mark.parametrize("folder,task,bbox", FOLDERS[:2], ids=[f[0] for f in FOLDERS[:2]])
def test_a_stray_carriage_return_is_text_or_a_reported_problem(tmp_path, folder, task, bbox):
    """Either fix is fine: the CR is an ordinary character of the text, or the row is reported by file and line."""
    data = _copy(folder, tmp_path / "data")
    file, line = _corrupt(data, Corruption("stray CR in text", _lone_cr), 0)
    try:
        dataset = load_dataset(data, task, bbox)
    except DataError as exc:
        assert any(p.file == file and p.line == line for p in exc.problems), str(exc)
    else:
        assert sum(len(getattr(dataset, s)) for s in SPLITS) == \
            sum(len(getattr(load_dataset(EXAMPLES / folder, task, bbox), s)) for s in SPLITS)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("corruption", ACCEPTED, ids=lambda c: c.name)
def test_an_accepted_corruption_parses(tmp_path, corruption, seed):
    folder, task, bbox = _pick_folder(corruption, seed)
    clean = load_dataset(_copy(folder, tmp_path / "clean"), task, bbox)
    data = _copy(folder, tmp_path / "data")
    _corrupt(data, corruption, seed)
    parsed = load_dataset(data, task, bbox)
    sizes = [len(getattr(parsed, s)) for s in SPLITS]
    assert sizes == [len(getattr(clean, s)) for s in SPLITS]
    if corruption.name == "quotes inside text":  # quotes are ordinary characters: the text keeps them
        changed = [(a.text, b.text) for s in SPLITS for a, b in zip(getattr(clean, s), getattr(parsed, s))
                   if a.text != b.text]
        assert len(changed) == 1 and ('"' in changed[0][1] or "'" in changed[0][1])


@pytest.mark.parametrize("folder,task,bbox", FOLDERS, ids=[f[0] for f in FOLDERS])
def test_bom_and_crlf_are_accepted_everywhere(tmp_path, folder, task, bbox):
    clean = load_dataset(EXAMPLES / folder, task, bbox)
    data = _copy(folder, tmp_path / "data")
    for split in SPLITS:
        path = data / f"{split}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    parsed = load_dataset(data, task, bbox)
    for split in SPLITS:
        assert [(r.text, r.label, r.bbox) for r in getattr(parsed, split)] == \
               [(r.text, r.label, r.bbox) for r in getattr(clean, split)]


@pytest.mark.parametrize("seed", range(12))
def test_several_corruptions_at_once_are_all_reported(tmp_path, seed):
    rng = random.Random(seed)
    folder, task, bbox = rng.choice(FOLDERS)
    data = _copy(folder, tmp_path / "data")
    kinds = [c for c in REJECTED if c.name not in ("empty file", "truncated last row", "wrong header")]
    expected = set()
    for k, corruption in enumerate(rng.sample(kinds, 3)):
        path = data / f"{SPLITS[k]}.csv"  # one per file, so they cannot hide one another
        lines = path.read_bytes().split(b"\n")[:-1]
        expected.add((path.name, corruption.apply(lines, rng.randrange(1, len(lines)), rng)))
        path.write_bytes(b"".join(x + b"\n" for x in lines))
    with pytest.raises(DataError) as info:
        load_dataset(data, task, bbox)
    assert expected <= {(p.file, p.line) for p in info.value.problems}, str(info.value)


# -- the container contract, a few cases end to end ------------------------------------------------------------------
CONTRACT_CASES = [
    ("tab inside text", "ner", "dev"), ("non-UTF-8 byte", "classif", "test"), ("empty file", "regression", "train"),
    ("missing column", "layoutlm-ner", "train"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,folder,split", CONTRACT_CASES, ids=[c[0] for c in CONTRACT_CASES])
def test_train_contract_writes_failure_with_file_and_line_and_no_model(tmp_path, name, folder, split):
    from tests.helpers.opt_ml import make_opt_ml, run_train

    corruption = next(c for c in REJECTED if c.name == name)
    task, bbox = next((t, b) for f, t, b in FOLDERS if f == folder)
    data = _copy(folder, tmp_path / "data")
    path = data / f"{split}.csv"
    lines = path.read_bytes().split(b"\n")[:-1]
    line = corruption.apply(lines, 5 if len(lines) > 5 else 1, random.Random(0))
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    # a model that does not exist: validation must fail before anything tries to load it
    hps = {"task_name": task, "use_bbox": str(bbox).lower(), "model_name": str(tmp_path / "no-such-model")}
    base = make_opt_ml(tmp_path / "ml", data, hps)
    proc = run_train(base)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    failure = (base / "output" / "failure").read_text(encoding="utf-8")
    assert f"{path.name}, line {line}" in failure and corruption.message in failure, failure
    assert "no-such-model" not in failure, "the model must not be touched before the data is valid"
    assert list((base / "model").iterdir()) == []


@pytest.mark.slow
def test_train_contract_reports_a_stray_carriage_return_with_file_and_line(tmp_path):
    from tests.helpers.opt_ml import make_opt_ml, run_train

    data = _copy("classif", tmp_path / "data")
    lines = (data / "train.csv").read_bytes().split(b"\n")[:-1]
    line = _lone_cr(lines, 7, random.Random(0))
    (data / "train.csv").write_bytes(b"".join(x + b"\n" for x in lines))
    base = make_opt_ml(tmp_path / "ml", data, {"task_name": "classif", "model_name": str(tmp_path / "no-model")})
    proc = run_train(base)
    proc.communicate(timeout=120)
    failure = (base / "output" / "failure").read_text(encoding="utf-8")
    assert proc.returncode != 0 and list((base / "model").iterdir()) == []
    # rejected at its line, or accepted as text (and then the missing model is what fails)
    assert f"train.csv, line {line}" in failure or "no-model" in failure, failure
