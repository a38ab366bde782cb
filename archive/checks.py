"""What ``make archive`` checks: the checkpoint checks serving also runs at load, and safe extraction.

The checkpoint checks live in ``runtimes.checkpoint`` so that a serving worker reaches them without this
package; they are imported here so that the archive side has one place to ask.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

from runtimes.checkpoint import CheckpointError, check_checkpoint, read_checkpoint

__all__ = ["CheckpointError", "check_checkpoint", "read_checkpoint", "safe_extract"]


def safe_extract(tarball: str | Path, dest: str | Path) -> None:
    """Extract a model.tar.gz, refusing absolute paths, '..' and links or devices: nothing may land outside
    ``dest``. (tarfile's own ``filter="data"`` needs Python 3.11.4+; Debian bookworm ships 3.11.2.)"""
    dest = Path(dest).resolve()
    with tarfile.open(tarball) as tf:
        members = tf.getmembers()
        for member in members:
            target = (dest / member.name).resolve()
            if member.name.startswith("/") or ".." in Path(member.name).parts or \
                    os.path.commonpath([target, dest]) != str(dest):
                raise CheckpointError(f"{Path(tarball).name}: member {member.name!r} would land outside the archive")
            if not (member.isfile() or member.isdir()):
                raise CheckpointError(f"{Path(tarball).name}: member {member.name!r} is a link or special file; "
                                      "refusing to extract it")
        for member in members:
            member.mode = (member.mode | 0o600) & 0o755 if member.isfile() else 0o755
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and the 3.10/3.11 releases that backported it
                tf.extract(member, dest, set_attrs=False, filter="data")
            else:
                tf.extract(member, dest, set_attrs=False)
