"""The checks several configs share: container image, execution role, instances, local files.

One place for each rule, so a training job, a model and a transform job refuse the same bad value with the same
words (the field, the value and what was expected).
"""
from __future__ import annotations

from pathlib import Path

from launcher.errors import require

ROLE_EXAMPLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE_EXAMPLE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/smtx:latest"


def check_image(image_uri: str) -> None:
    """A container image URI: not empty, no spaces."""
    require(bool(image_uri) and " " not in image_uri, "image_uri", image_uri,
            f"a container image URI such as {IMAGE_EXAMPLE}")


def check_role(role_arn: str) -> None:
    """An IAM role ARN (SageMaker assumes it to run the container)."""
    require(isinstance(role_arn, str) and role_arn.startswith("arn:") and ":role/" in role_arn, "role_arn",
            role_arn, f"an IAM role ARN such as {ROLE_EXAMPLE}")


def check_instances(instance_type: str, instance_count: int) -> None:
    """An ``ml.*`` instance type and at least one instance."""
    require(isinstance(instance_type, str) and instance_type.startswith("ml."), "instance_type", instance_type,
            "an ml.* instance type such as ml.g4dn.xlarge")
    require(isinstance(instance_count, int) and instance_count >= 1, "instance_count", instance_count,
            "an integer >= 1")


def existing_file(path: str | Path, field: str) -> Path:
    """``path`` as a Path, or SettingError naming ``field`` when it is not a readable file."""
    path = Path(path)
    require(path.is_file(), field, str(path),
            "an existing file" + (" (it is a folder)" if path.is_dir() else f" (nothing at {path.resolve()})"))
    return path


def writable_path(path: str | Path, field: str) -> Path:
    """``path`` as a Path, or SettingError naming ``field`` when its folder does not exist."""
    path = Path(path)
    require(path.parent.is_dir(), field, str(path), f"a file in an existing folder ({path.parent} does not exist)")
    require(not path.is_dir(), field, str(path), "a file name, not a folder")
    return path
