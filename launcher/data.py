"""Upload a training data folder to S3, after validating it with the training code's own validator.

Validation runs on the laptop with the exact rules the training job applies, so a bad row fails in seconds
with its file, line and column instead of after an instance has been started and billed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from launcher.aws import Clients
from launcher.names import unique_name
from launcher.s3 import S3Uri, upload_file
from training.data import SPLITS, load_dataset

log = logging.getLogger(__name__)

TSV = "text/tab-separated-values"


@dataclass(frozen=True)
class UploadedData:
    """Where a validated data folder now lives, and what it held."""

    uri: str
    task: str
    rows: dict[str, int]
    labels: tuple[str, ...]


def validate_folder(folder: str | Path, task: str, use_bbox: bool = False) -> dict[str, int]:
    """Rows per split; raises training.data.DataError listing every problem (file, line, column)."""
    dataset = load_dataset(folder, task, use_bbox=use_bbox)
    return {split: len(getattr(dataset, split)) for split in SPLITS}


def upload_dataset(clients: Clients, folder: str | Path, task: str, s3_prefix: str,
                   use_bbox: bool = False) -> UploadedData:
    """Validate ``folder`` then upload its three files under a new, unique folder below ``s3_prefix``.

    Each upload gets its own folder so a training job's input never changes under it (and re-running an
    old job's configuration trains on the same bytes).
    """
    folder = Path(folder)
    dataset = load_dataset(folder, task, use_bbox=use_bbox)
    target = S3Uri.parse(s3_prefix, "s3_prefix").join(unique_name(f"{task}-{folder.name}"))
    for split in SPLITS:
        upload_file(clients.s3, folder / f"{split}.csv", target.join(f"{split}.csv"), TSV)
    rows = {split: len(getattr(dataset, split)) for split in SPLITS}
    log.info("uploaded %s (%s) to %s", folder, rows, target)
    return UploadedData(uri=str(target.as_prefix()), task=task, rows=rows, labels=dataset.labels)
