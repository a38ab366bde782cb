"""The checks several configs share: container image, execution role, instances, local files.

One place for each rule, so a training job, a model and a transform job refuse the same bad value with the same
words (the field, the value and what was expected).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import botocore.session

from launcher.errors import SettingError, require

#: the instance type of a training job, an endpoint and a transform job when none is given: one T4 GPU, the
#: smallest GPU SageMaker offers for all three (so the default runs the GPU image)
DEFAULT_INSTANCE = "ml.g4dn.xlarge"
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


#: job kind -> the shape of SageMaker's API that lists the instance types it offers for that kind. botocore ships
#: the API model, so the lists are SageMaker's own (as new as the installed botocore) and need no network
INSTANCE_TYPE_SHAPES = {"training": "TrainingInstanceType", "hosting": "ProductionVariantInstanceType",
                        "transform": "TransformInstanceType", "processing": "ProcessingInstanceType"}


@cache
def offered_instance_types(kind: str) -> frozenset[str]:
    """The instance types SageMaker offers for ``kind`` (training, hosting, transform or processing)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(INSTANCE_TYPE_SHAPES[kind]).enum)


def _family(instance_type: str) -> str:
    return instance_type.rsplit(".", 1)[0]


def check_instances(instance_type: str, instance_count: int, kind: str) -> None:
    """An instance type SageMaker offers for ``kind`` (training, hosting or transform), and at least one instance.

    The message lists the sizes of a known family (``ml.g4dn.huge``), or the families offered for the kind."""
    offered = offered_instance_types(kind)
    if not (isinstance(instance_type, str) and instance_type in offered):
        ml = isinstance(instance_type, str) and instance_type.startswith("ml.")
        family = _family(instance_type) if ml else ""
        sizes = sorted(t for t in offered if _family(t) == family)
        hint = (f"one of {', '.join(sizes)}" if sizes else
                f"families {', '.join(sorted({_family(t) for t in offered}))}")
        raise SettingError("instance_type", instance_type,
                           f"an ml.* instance type SageMaker offers for {kind}, such as {DEFAULT_INSTANCE} ({hint})")
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
