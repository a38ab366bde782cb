"""S3 locations and the few object operations the launcher needs."""
from __future__ import annotations

import json
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

from botocore.exceptions import BotoCoreError, ClientError

from launcher.aws import error_code
from launcher.errors import SettingError
from tasks.serving_manifest import SERVING_FILE, ServingManifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class S3Uri:
    """``s3://bucket/key``; a key ending with ``/`` (or empty) is a prefix."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str, field: str = "s3_uri") -> "S3Uri":
        """Parse ``s3://bucket[/key]``; raise SettingError naming ``field`` otherwise."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise SettingError(field, uri, "an s3://bucket/key URI")
        bucket, _, key = uri[len("s3://"):].partition("/")
        if not 3 <= len(bucket) <= 63 or "/" in bucket:
            raise SettingError(field, uri, "an s3://bucket/key URI with a 3-63 character bucket name")
        return cls(bucket, key)

    def join(self, *parts: str) -> "S3Uri":
        """This location with ``parts`` appended as path segments."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Uri(self.bucket, key)

    def as_prefix(self) -> "S3Uri":
        """The same location with a trailing ``/``, as SageMaker wants for prefixes."""
        return self if self.key.endswith("/") or not self.key else S3Uri(self.bucket, self.key + "/")

    @property
    def name(self) -> str:
        """The last path segment."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def upload_file(s3: Any, path: str | Path, uri: S3Uri, content_type: str | None, tagging: str) -> S3Uri:
    """Upload one local file to ``uri`` with ``tagging`` (``Placement.object_tagging``: every object the launcher
    writes is tagged like the resources it creates; s3:PutObjectTagging)."""
    extra = {"Tagging": tagging, **({"ContentType": content_type} if content_type else {})}
    s3.upload_file(str(path), uri.bucket, uri.key, ExtraArgs=extra)
    log.info("uploaded %s -> %s", path, uri)
    return uri


def download_file(s3: Any, uri: S3Uri, path: str | Path) -> Path:
    """Download one object to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(uri.bucket, uri.key, str(path))
    log.info("downloaded %s -> %s", uri, path)
    return path


def exists(s3: Any, uri: S3Uri) -> bool:
    """Whether an object exists at ``uri``."""
    try:
        s3.head_object(Bucket=uri.bucket, Key=uri.key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


#: what reading an archive from S3 can raise: S3 (missing, forbidden), the connection, and a body that is no tar.gz
ARCHIVE_READ_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, tarfile.TarError, OSError, EOFError)


def archive_members(s3: Any, uri: S3Uri, names: Collection[str], max_bytes: int | None = None) -> dict[str, bytes]:
    """The named regular files of the model.tar.gz at ``uri`` (name -> content; those it lacks are absent), read as
    a stream that stops once all are found: nothing else is kept or written. ValueError when the object is larger
    than ``max_bytes``; ``ARCHIVE_READ_ERRORS`` are the caller's to word."""
    response = s3.get_object(Bucket=uri.bucket, Key=uri.key)
    if max_bytes is not None and response.get("ContentLength", 0) > max_bytes:
        response["Body"].close()
        raise ValueError(f"{uri} is larger than {max_bytes} bytes: not scanned")
    wanted, found = set(names), {}
    with tarfile.open(fileobj=response["Body"], mode="r|gz") as archive:
        for member in archive:
            name = member.name.lstrip("./")
            handle = archive.extractfile(member) if member.isfile() and name in wanted else None
            if handle is not None:
                found[name] = handle.read()
                if len(found) == len(wanted):
                    break
    return found


def copy(s3: Any, source: S3Uri, target: S3Uri, tagging: str) -> S3Uri:
    """Server-side copy of one object (managed, so artifacts over 5 GB work too), tagged with ``tagging`` rather
    than the source's tags."""
    s3.copy({"Bucket": source.bucket, "Key": source.key}, target.bucket, target.key,
            ExtraArgs={"Tagging": tagging, "TaggingDirective": "REPLACE"})
    log.info("copied %s -> %s", source, target)
    return target


def list_keys(s3: Any, prefix: S3Uri) -> list[str]:
    """Every key under ``prefix``, relative to it, sorted."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        keys.extend(obj["Key"][len(prefix.key):] for obj in page.get("Contents", []))
    return sorted(keys)


def ensure_bucket(s3: Any, uri: S3Uri, region: str, create: bool | None = None) -> bool:
    """Check that ``uri``'s bucket exists (creating it in ``region`` when ``create``); True when it was created.

    ``create`` is None where the command has no --create-bucket: the message then does not offer it.

    Listing one key under the prefix is the check, not HeadBucket: the documented IAM policy allows listing
    only below the prefix, and a missing bucket answers NoSuchBucket either way. AccessDenied is left for the
    call that follows to report, since these credentials may still be allowed to write there.
    """
    try:
        s3.list_objects_v2(Bucket=uri.bucket, Prefix=uri.as_prefix().key, MaxKeys=1)
        return False
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucket":
            if error_code(exc) in ("AccessDenied", "403"):
                log.info("cannot list s3://%s (%s); going on", uri.bucket, error_code(exc))
                return False
            raise
    if not create:
        offer = "" if create is None else ", or pass --create-bucket"
        raise SettingError("s3_prefix", str(uri), "a prefix in an existing bucket", message=(
            f"bucket {uri.bucket!r} (from {uri}) does not exist; create it with "
            f"`aws s3 mb s3://{uri.bucket} --region {region}`{offer}"))
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=uri.bucket, **location)
    log.info("created bucket %s in %s", uri.bucket, region)
    return True


#: an archive whose serving.json cannot be read: unreadable, too large to scan (ValueError), or a serving.json this
#: code does not read (ValueError: not JSON, or a manifest it refuses)
MANIFEST_READ_ERRORS: tuple[type[Exception], ...] = (*ARCHIVE_READ_ERRORS, ValueError)


def archive_manifest(s3: Any, model_data: str, max_bytes: int | None = None) -> ServingManifest:
    """The serving.json of the model.tar.gz at ``model_data`` (``ServingManifest()``, torch, where it has none, as
    the handler reads it). ``make archive`` writes serving.json first, so the stream stops at once; an older
    archive is read up to it. ``MANIFEST_READ_ERRORS`` are the caller's to word."""
    found = archive_members(s3, S3Uri.parse(model_data, "model_data"), [SERVING_FILE], max_bytes=max_bytes)
    return ServingManifest.from_dict(json.loads(found[SERVING_FILE])) if found else ServingManifest()
