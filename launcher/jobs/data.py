"""Upload a training data folder to S3, after validating it with the training code's own validator.

Validation runs on the laptop with the exact rules the training job applies (``training.data.load_dataset``,
which imports no torch), so a bad row fails in seconds with its file, line and column instead of after an
instance has been started and billed. Planning (validate, choose the target) is apart from uploading, so a
command can check all its other settings before it writes anything.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from launcher.aws import Clients, error_code
from launcher.errors import SettingError, require
from launcher.names import unique_name
from launcher.placement import Placement
from launcher.s3 import S3Uri, ensure_bucket, list_keys, upload_file
from training.data import SPLITS, load_dataset

log = logging.getLogger(__name__)

TSV = "text/tab-separated-values"


@dataclass(frozen=True)
class UploadedData:
    """Where a validated data folder goes (or went), and what it holds."""

    uri: str
    task: str
    rows: dict[str, int]
    labels: tuple[str, ...]
    folder: Path


def validate_folder(folder: str | Path, task: str, use_bbox: bool = False) -> dict[str, int]:
    """Rows per split; raises training.data.DataError listing every problem (file, line, column)."""
    _require_folder(folder)
    dataset = load_dataset(folder, task, use_bbox=use_bbox)
    return {split: len(getattr(dataset, split)) for split in SPLITS}


def plan_upload(folder: str | Path, task: str, s3_prefix: str, use_bbox: bool = False) -> UploadedData:
    """Validate ``folder`` and choose its new, unique S3 folder ``{s3_prefix}/{task}-{folder}-{time}-{hex}/``.

    Nothing is written. Each upload gets its own folder so a training job's input never changes under it (and
    re-running an old job's configuration trains on the same bytes).
    """
    folder = _require_folder(folder)
    base = S3Uri.parse(s3_prefix, "s3_prefix")
    dataset = load_dataset(folder, task, use_bbox=use_bbox)
    target = base.join(unique_name(f"{task}-{folder.resolve().name}")).as_prefix()
    rows = {split: len(getattr(dataset, split)) for split in SPLITS}
    return UploadedData(uri=str(target), task=task, rows=rows, labels=dataset.labels, folder=folder)


def upload_planned(clients: Clients, plan: UploadedData, tagging: str | None = None) -> UploadedData:
    """Upload the three files of a planned upload (its bucket must exist: see ``launcher.s3.ensure_bucket``),
    tagged with ``tagging`` (default: ``upload``'s tags without user tags)."""
    target = S3Uri.parse(plan.uri)
    tagging = Placement().object_tagging("upload") if tagging is None else tagging
    for split in SPLITS:
        upload_file(clients.s3, plan.folder / f"{split}.csv", target.join(f"{split}.csv"), TSV, tagging)
    log.info("uploaded %s (%s) to %s", plan.folder, plan.rows, target)
    return plan


def check_uploaded(clients: Clients, uri: str) -> None:
    """Refuse an ``s3://`` data prefix that lacks train.csv, dev.csv or test.csv (SettingError naming --data).

    SageMaker would start (and bill) the job on an empty or wrong prefix and fail only inside the container."""
    prefix = S3Uri.parse(uri, "data").as_prefix()
    try:
        keys = set(list_keys(clients.s3, prefix))
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucket":
            raise
        raise SettingError("data", uri, f"an s3:// prefix in an existing bucket (bucket {prefix.bucket!r} does "
                                        "not exist)") from None
    missing = [f"{split}.csv" for split in SPLITS if f"{split}.csv" not in keys]
    require(not missing, "data", uri, "an s3:// prefix holding train.csv, dev.csv and test.csv (missing: "
                                      f"{', '.join(missing)}; upload a folder with python -m launcher upload)")


def upload_dataset(clients: Clients, folder: str | Path, task: str, s3_prefix: str, use_bbox: bool = False,
                   create_bucket: bool = False, tagging: str | None = None) -> UploadedData:
    """Validate ``folder``, check the bucket (or create it), then upload the three files (see plan_upload)."""
    plan = plan_upload(folder, task, s3_prefix, use_bbox)
    ensure_bucket(clients.s3, S3Uri.parse(plan.uri), clients.region, create_bucket)
    return upload_planned(clients, plan, tagging)


def _require_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    require(folder.is_dir(), "folder", str(folder), "an existing folder with train.csv, dev.csv and test.csv")
    return folder
