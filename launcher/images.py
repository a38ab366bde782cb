"""Which image runs on which instance, and the per-architecture batch sizes a GPU training job starts from.

An instance type ``ml.g*`` or ``ml.p*`` has NVIDIA GPUs and runs the GPU image (the CUDA build of torch); every
other type runs the CPU image. The two are configured separately (``--image`` or SMTX_TRAINING_IMAGE /
SMTX_SERVING_IMAGE for CPU, ``--gpu-image`` or SMTX_GPU_IMAGE for GPU). An image is taken to be a CPU image when
it is the configured CPU image, or when its tag says so: ``:cpu``, or a tag with ``cpu`` as a ``-``/``.``/``_``
separated part (``:1.4-cpu``, ``:cpu-py311``). Such an image is refused on a GPU instance: it would leave the GPU
idle and bill for it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from launcher.errors import SettingError
from tasks.families import FAMILIES, family_of_name

GPU_FAMILIES = ("ml.g", "ml.p")
_CPU_TAG = re.compile(r"(^|[-._])cpu($|[-._])")


def is_gpu_instance(instance_type: str) -> bool:
    """Whether SageMaker gives ``instance_type`` NVIDIA GPUs (``ml.g4dn.xlarge``, ``ml.p3.2xlarge``, ...)."""
    return instance_type.startswith(GPU_FAMILIES)


def tagged_cpu(image_uri: str) -> bool:
    """Whether the image's tag marks it as a CPU build (``...:cpu``, ``...:1.4-cpu``)."""
    name = image_uri.split("@", 1)[0].rsplit("/", 1)[-1]
    _, _, tag = name.partition(":")
    return bool(_CPU_TAG.search(tag.lower()))


@dataclass(frozen=True)
class Images:
    """The configured images: ``explicit`` is ``--image`` given on the command line, which wins everywhere."""

    cpu: str | None
    gpu: str | None
    explicit: str | None = None
    #: the flags and variables each comes from, for the messages
    cpu_source: str = "--image or SMTX_SERVING_IMAGE"
    gpu_source: str = "--gpu-image or SMTX_GPU_IMAGE"

    def pick(self, instance_type: str | None) -> str:
        """The image for ``instance_type`` (None: no instances, as on a serverless endpoint, which has no GPU and
        runs the CPU image); SettingError when none fits (a CPU image on a GPU instance)."""
        if instance_type is None or not is_gpu_instance(instance_type):
            image = self.explicit or self.cpu
            if not image:
                raise SettingError("image", None, self.cpu_source)
            return image
        image = self.explicit or self.gpu
        if not image:
            raise SettingError("gpu_image", None, f"{self.gpu_source} for a GPU instance ({instance_type}); "
                               "or choose a CPU instance type such as ml.m5.xlarge")
        check_gpu_image(image, instance_type, configured_cpu=self.cpu)
        return image


def check_gpu_image(image: str, instance_type: str, configured_cpu: str | None = None) -> None:
    """Refuse a CPU image on a GPU instance (by its tag, or because it is the configured CPU image)."""
    if is_gpu_instance(instance_type) and (tagged_cpu(image) or image == configured_cpu):
        why = "its tag says cpu" if tagged_cpu(image) else "it is the configured CPU image"
        raise SettingError("image", image, "a GPU image on a GPU instance", message=(
            f"image={image!r} is a CPU image ({why}) and {instance_type} is a GPU instance: it would leave the GPU "
            "idle. Pass --gpu-image (or set SMTX_GPU_IMAGE) to the GPU build, or choose a CPU instance type "
            "such as ml.m5.xlarge"))


#: ``per_device_train_batch_size`` / ``per_device_eval_batch_size`` on a GPU instance, per architecture: the
#: family table's (tasks/families.py, pure: no model code is imported)
GPU_BATCH_SIZES: dict[str, int] = {name: f.gpu_batch_size for name, f in FAMILIES.items() if f.gpu_batch_size}


def family_of(model_name: str) -> str | None:
    """The architecture a model name suggests (``allenai/longformer-base-4096`` -> longformer), else None: the
    family table's name hints, so a new row is guessed too."""
    return family_of_name(model_name)


def default_batch_sizes(model_name: str, instance_type: str) -> dict[str, int]:
    """The batch sizes to send when the user gave none: the table above on a GPU instance, nothing on a CPU one
    (the training defaults apply) or for an architecture the table does not know."""
    family = family_of(model_name)
    if not is_gpu_instance(instance_type) or family not in GPU_BATCH_SIZES:
        return {}
    size = GPU_BATCH_SIZES[family]
    return {"per_device_train_batch_size": size, "per_device_eval_batch_size": size}
