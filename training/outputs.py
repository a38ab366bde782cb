"""All-or-nothing output: a run writes into a staging directory that is moved into place only at the end.

SageMaker mounts ``/opt/ml/model`` as an existing (empty) directory, often on its own filesystem, so the
staging directory lives inside the target and its entries are renamed into it; a target that does not exist
yet is staged beside itself and renamed whole. Either way a failed run leaves no half-written model.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType


class OutputError(RuntimeError):
    """The output directory cannot take a new model (it holds files already)."""


class StagedOutput:
    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        if self.target.exists():
            if not self.target.is_dir():
                raise OutputError(f"output {self.target} exists and is not a directory")
            leftovers = [p.name for p in self.target.iterdir() if not p.name.startswith(".staging-")]
            if leftovers:
                raise OutputError(f"output directory {self.target} is not empty ({sorted(leftovers)[:5]}); "
                                  "choose an empty or new directory")
            self._inside = True
            self.path = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.target))
        else:
            self._inside = False
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".staging-{self.target.name}-", dir=self.target.parent))

    def commit(self) -> Path:
        if self._inside:
            for entry in sorted(self.path.iterdir()):
                entry.rename(self.target / entry.name)
            self.path.rmdir()
        else:
            self.path.rename(self.target)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "StagedOutput":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.discard()


def shared_checkpoint_dir(run_id: str | None) -> Path | None:
    """A checkpoint folder every process of one distributed run agrees on (torchrun's run id), else None."""
    if not run_id:
        return None
    return Path(tempfile.gettempdir()) / f"smtx-checkpoints-{run_id}"
