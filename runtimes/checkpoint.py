"""What a checkpoint directory must satisfy before it is served (and before ``make archive`` archives it).

Serving runs these checks at every load -- single-model ``serve`` before TorchServe starts, and each worker
before it loads a model, since a multi-model ``POST /models`` load gets no other gate -- so they live beside the
other code that reads a checkpoint directory and import nothing heavier than ``tasks``: no torch, no
``archive`` (which is not shipped inside model archives). ``archive.checks`` runs the same checks at archive time.

An archive whose ``serving.json`` says ONNX Runtime serves carries the graph instead of the safetensors weights
(``make archive`` drops them unless ``--keep-weights``): the graph must be there, pickled weights are still
refused, and the head is checked against ``config.json`` here and against the graph's output width when the
worker opens it (``check_output_width``), so a weightless archive is never served with a wrong head.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from runtimes.openvino_runtime import IR_FILE
from tasks.errors import SpecError
from tasks.kinds import Resolved, TaskLike, as_resolved, resolve
from tasks.serving_manifest import SERVING_FILE, ManifestError, ServingManifest, openvino_weights
from tasks.spec import TASK_SPEC_FILE, TaskSpec

#: pickle-based weight formats: loading one can run arbitrary code, so they are refused outright
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
#: the one .bin that is no pickle: OpenVINO's raw weights beside its model.openvino.xml, which torch never loads
OPENVINO_WEIGHTS = openvino_weights(IR_FILE)


class CheckpointError(ValueError):
    """The checkpoint cannot be served; the message says what is wrong and where."""


def check_checkpoint(path: str | Path) -> TaskSpec:
    """The checkpoint's spec, after checking spec, weights, labels and tokenizer (``read_checkpoint``)."""
    return read_checkpoint(path).spec


def read_checkpoint(path: str | Path) -> Resolved:
    """The checkpoint's spec with its task's row and family, resolved once here (``tasks.kinds.resolve``), after
    checking spec, weights, labels and tokenizer: what the archive and serving pass along from here on."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is not a directory")
    pickled = sorted(p.name for p in path.rglob("*") if p.suffix.lower() in PICKLED_SUFFIXES
                     and p.relative_to(path).as_posix() != OPENVINO_WEIGHTS)
    if pickled:
        raise CheckpointError(f"checkpoint {path} holds pickled weights {pickled}; only safetensors are accepted "
                              "(re-save with save_pretrained, which writes model.safetensors)")
    weights = sorted(path.glob("*.safetensors"))
    for file in weights:
        check_safetensors(file)
    serving = read_serving(path)
    graph = onnx_file(path, serving)
    if graph is not None and not graph.is_file():
        raise CheckpointError(f"{path / SERVING_FILE} names the ONNX model {graph.name}, which is missing")
    for gated in serving.passed_paths:
        missing = [name for name in gated.files if not (path / name).is_file()]
        if missing:
            raise CheckpointError(f"{path / SERVING_FILE} lists the {gated.name} path, whose {missing[0]} is missing")
    if graph is None and not weights:
        raise CheckpointError(f"checkpoint {path} has no .safetensors weights")
    try:
        task = resolve(TaskSpec.from_dict(json.loads((path / TASK_SPEC_FILE).read_text(encoding="utf-8"))))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no {TASK_SPEC_FILE}; was it written by our training?") from None
    except (ValueError, SpecError) as exc:
        raise CheckpointError(f"{path / TASK_SPEC_FILE} is not valid: {exc}") from None
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable config.json: {exc}") from None
    _check_head(task, config, path)
    if not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt", "vocab.json")):
        raise CheckpointError(f"checkpoint {path} has no tokenizer files (tokenizer.json)")
    return task


def has_weights(path: Path) -> bool:
    """Whether the directory carries safetensors weights: torch can serve it (on a GPU too)."""
    return any(path.glob("*.safetensors"))


def read_serving(path: Path) -> ServingManifest:
    """``serving.json`` of an archive (``ServingManifest()``, torch, for a training checkpoint, which has none)."""
    file = path / SERVING_FILE
    if not file.is_file():
        return ServingManifest()
    try:
        return ServingManifest.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except ManifestError as exc:
        raise CheckpointError(f"{file} is not valid: {exc}") from None
    except ValueError as exc:
        raise CheckpointError(f"{file} is not valid JSON: {exc}") from None


def write_serving(path: Path, serving: ServingManifest) -> None:
    """Write ``serving`` as the archive directory ``path``'s serving.json (``make archive``, once)."""
    (path / SERVING_FILE).write_text(json.dumps(serving.to_dict(), indent=2), encoding="utf-8")


def onnx_file(path: Path, serving: ServingManifest | None = None) -> Path | None:
    """The ONNX graph serving.json says serves this archive, or None where torch serves it (``serving``: the
    file's content where the caller has read it already)."""
    serving = read_serving(path) if serving is None else serving
    if serving.runtime != "onnx" or serving.onnx_file is None:
        return None
    return path / serving.onnx_file


def check_output_width(width: object, task: TaskLike, graph: Path) -> None:
    """The graph's logits are as wide as the task spec's outputs (a symbolic width is left to config.json)."""
    resolved = as_resolved(task)
    needed = resolved.kind.num_outputs(resolved.spec.labels)
    if isinstance(width, int) and width != needed:
        what = "OpenVINO model" if graph.suffix == ".xml" else "ONNX model"
        raise CheckpointError(f"the {what} {graph.name} gives {width} outputs but the task spec needs "
                              f"{needed} ({graph.parent})")


def _check_head(task: Resolved, config: dict[str, Any], path: Path) -> None:
    spec = task.spec
    if config.get("model_type") != spec.model_type:
        raise CheckpointError(f"config.json model_type {config.get('model_type')!r} differs from the task spec's "
                              f"{spec.model_type!r}")
    id2label = config.get("id2label") or {}
    needed = task.kind.num_outputs(spec.labels)
    if len(id2label) != needed:
        raise CheckpointError(f"the model head has {len(id2label)} outputs but the task spec needs {needed} ({path})")
    if spec.labels and [id2label.get(str(i)) for i in range(len(spec.labels))] != list(spec.labels):
        raise CheckpointError(f"config.json id2label {id2label} does not match the task spec labels "
                              f"{list(spec.labels)}")


def check_safetensors(path: Path) -> None:
    """The file is whole: its header parses and the tensors it declares end exactly at the end of the file.
    (A truncated copy would otherwise be found only when a worker loads it, or never, with ONNX serving.)"""
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(fh.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{path.name} is not a valid safetensors file ({exc})") from None
    if 8 + header_len + end != size:
        raise CheckpointError(f"{path.name} is truncated or corrupt: {size} bytes, the header declares "
                              f"{8 + header_len + end}")
