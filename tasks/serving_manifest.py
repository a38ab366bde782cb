"""The serving manifest: ``serving.json``, the small versioned file that says how an archive serves.

``make archive`` writes it (``archive/build.py``, through ``runtimes.checkpoint.write_serving``): which runtime
serves, the graph file, why, the gates' figures, and what a worker given a GPU does (``gpu``). Workers
(``runtimes``), the bench and the launcher (``launcher/endpoints/serverless.py``, which reads it out of a
model.tar.gz on S3 to size a serverless endpoint) read it through ``ServingManifest.from_dict``. A training
checkpoint has none: torch serves it (``ServingManifest()``).

It lives in ``tasks`` for the same reason as ``tasks.serving_contract``: the server's code and the launcher both
import it, and the launcher imports no serving code. Like the rest of ``tasks`` it does no file I/O; reading and
writing the file is ``runtimes.checkpoint``'s (``read_serving``, ``write_serving``). It mirrors ``tasks.spec``:
a schema version, unknown fields refused, ``from_dict`` / ``to_dict``.
"""
from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any

#: the file's name inside an archive
SERVING_FILE = "serving.json"
#: what serves where the archive names no runtime (a training checkpoint, or a file without ``runtime``)
DEFAULT_RUNTIME = "torch"
RUNTIMES = ("torch", "onnx")
#: what a gated path may run on (``paths``): the archive-level runtimes, and OpenVINO for the CPU's matrix units
PATH_RUNTIMES = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "int8", "bf16")
#: the CPU paths ``make archive`` gates ("<runtime>-<precision>", ``archive.precisions``)
PATH_NAMES = ("onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-bf16")
#: SMTX_PRECISION's values (``tasks.serving_contract``): auto chooses by the CPU (``runtimes.precision``), a
#: precision picks its fastest gated path, a path name that path (the bench measures each one that way)
PRECISION_REQUESTS = ("auto", *PRECISIONS, *PATH_NAMES)
#: 1 added ``schema_version`` itself; files written before it (version 0) have the same fields otherwise.
#: 2 added ``paths``: every (runtime, precision) the archive gated, which a CPU worker chooses from at load
SCHEMA_VERSION = 2
#: the versions this code reads; a file without ``schema_version`` is version 0
READS = (0, 1, 2)


class ManifestError(ValueError):
    """serving.json has an unknown field, a wrong value or an unknown schema version; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_NULL = type(None)
_JSON_NAMES = {str: "a string", dict: "an object", list: "a list", bool: "true or false", int: "a number",
               float: "a number", _NULL: "null"}


def _json(default: Any, *types: type) -> Any:
    """A field whose value in the file is one of the JSON ``types`` (``_NULL``: it may be null)."""
    return field(default=default, metadata={"json": types})


@dataclass(frozen=True)
class GpuEntry:
    """What a worker given a GPU does with this archive (``archive.parity.gpu_entry`` writes it)."""

    #: "torch" where the archive keeps torch's weights; None where they were dropped (ONNX serves on the CPU)
    runtime: str | None = _json(None, str, _NULL)
    reason: str = _json("", str)
    #: fp16 serves where it answers within this of the check set's fp32 answers (``runtimes.device``)
    fp16_tolerance: float | None = _json(None, int, float, _NULL)
    note: str | None = _json(None, str, _NULL)
    #: the check set the load-time fp16 gate runs (``runtimes.parity.CHECK_FILE``), and its size
    check_file: str | None = _json(None, str, _NULL)
    check_records: int = _json(0, int)

    def __post_init__(self) -> None:
        if self.runtime not in (None, "torch"):
            raise ManifestError("gpu.runtime", f"serving manifest gpu.runtime must be 'torch' or null, "
                                f"got {self.runtime!r}")

    @classmethod
    def from_dict(cls, data: Any) -> "GpuEntry":
        return cls(**_checked(data, fields(cls), "gpu."))


def _bare_file(name: str | None) -> bool:
    """A file name in the archive's own directory, never a path elsewhere."""
    return bool(name) and "/" not in str(name) and "\\" not in str(name) and name not in (".", "..")


def openvino_weights(model_file: str) -> str:
    """Where an OpenVINO model (its ``.xml``) keeps its weights: the ``.bin`` beside it, as OpenVINO looks for them."""
    stem, dot, _ = model_file.rpartition(".")
    return f"{stem if dot else model_file}.bin"


@dataclass(frozen=True)
class ServingPath:
    """One way this archive can serve on a CPU: a runtime, a precision and its file, with its gate's verdict.

    ``make archive`` gates each one (``archive.precisions``): fp32 paths must answer what torch answers (the
    parity gate), int8 and bf16 paths may lose at most the tolerance on the primary dev metric. ``dev`` and
    ``test`` are the primary metric's scores on those splits with this path (None where the split was not
    given); a worker chooses among the passed paths at load (``runtimes.precision``)."""

    name: str = _json("", str)
    runtime: str = _json("onnx", str)
    precision: str = _json("fp32", str)
    #: the graph (ONNX) or model (OpenVINO IR) file in the archive; None for torch (its weights)
    file: str | None = _json(None, str, _NULL)
    passed: bool = field(default=False, metadata={"json": (bool,)})
    reason: str = _json("", str)
    #: "parity" (answers what torch answers) or "dev" (primary dev metric within the tolerance of fp32)
    gate: str = _json("", str)
    #: the gate's figures: parity's, or the dev metric with fp32, with this path, the loss and the tolerance
    figures: dict[str, Any] | None = _json(None, dict, _NULL)
    #: the primary metric on dev and test with this path ({"metric": "f1", "dev": 0.91, "test": 0.90})
    scores: dict[str, Any] | None = _json(None, dict, _NULL)

    def __post_init__(self) -> None:
        where = f"paths[{self.name or '?'}]"
        if self.runtime not in PATH_RUNTIMES:
            raise ManifestError(f"{where}.runtime", f"serving manifest {where}.runtime must be one of "
                                f"{list(PATH_RUNTIMES)}, got {self.runtime!r}")
        if self.precision not in PRECISIONS:
            raise ManifestError(f"{where}.precision", f"serving manifest {where}.precision must be one of "
                                f"{list(PRECISIONS)}, got {self.precision!r}")
        if self.runtime != "torch" and not _bare_file(self.file):
            raise ManifestError(f"{where}.file", f"serving manifest {where} names no model file in the archive "
                                f"(file={self.file!r})")

    @property
    def files(self) -> tuple[str, ...]:
        """The archive's files this path loads: its model file, and for OpenVINO the weights beside it."""
        if self.file is None:
            return ()
        return (self.file, openvino_weights(self.file)) if self.runtime == "openvino" else (self.file,)

    @classmethod
    def from_dict(cls, data: Any, index: int) -> "ServingPath":
        return cls(**_checked(data, fields(cls), f"paths[{index}]."))


@dataclass(frozen=True)
class ServingManifest:
    """How an archive serves: its runtime and graph, why, the gates' figures, and the GPU entry."""

    runtime: str = _json(DEFAULT_RUNTIME, str)
    #: the ONNX graph's file name in the archive (where ONNX serves)
    onnx_file: str | None = _json(None, str, _NULL)
    reason: str = _json("", str)
    #: the parity gate's figures (``runtimes.parity.parity``), where it ran
    parity: dict[str, Any] | None = _json(None, dict, _NULL)
    #: the exported graph: whether it is fused, and why not (``archive.onnx_export.export_onnx``)
    graph: dict[str, Any] | None = _json(None, dict, _NULL)
    #: what ``runtimes.onnx_runtime.save_optimized`` applied to the saved graph
    graph_optimization: str | None = _json(None, str, _NULL)
    #: what became of torch's weights in an ONNX archive ("dropped: ONNX serves", "kept (--keep-weights)")
    weights: str | None = _json(None, str, _NULL)
    #: the int8 gate's figures, where the served graph is the int8 one
    quantization: dict[str, Any] | None = _json(None, dict, _NULL)
    gpu: GpuEntry | None = _json(None, dict, _NULL)
    #: every CPU path the archive gated, passed or not (schema 2); empty: ``runtime`` and ``onnx_file`` serve
    paths: tuple[ServingPath, ...] = field(default=(), metadata={"json": (list,)})
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ManifestError("runtime", f"serving manifest runtime must be one of {list(RUNTIMES)}, "
                                f"got {self.runtime!r}")
        # a bare file name: the graph sits in the archive's own directory, never elsewhere
        if self.runtime == "onnx" and not _bare_file(self.onnx_file):
            raise ManifestError("onnx_file", f"serving manifest names no ONNX model file in the archive "
                                f"(onnx_file={self.onnx_file!r})")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = [asdict(path) for path in self.paths]
        return data

    @property
    def passed_paths(self) -> tuple[ServingPath, ...]:
        return tuple(path for path in self.paths if path.passed)

    @classmethod
    def from_dict(cls, data: Any) -> "ServingManifest":
        """The manifest of a parsed serving.json (ManifestError, naming the field, where it is not valid)."""
        if not isinstance(data, dict):
            raise ManifestError("", f"serving manifest must be a JSON object, got {data!r}")
        version = data.get("schema_version", 0)
        if isinstance(version, bool) or version not in READS:
            raise ManifestError("schema_version", f"serving manifest schema_version {version!r} is not supported "
                                f"(this code reads {' and '.join(map(str, READS[1:]))}, and files without one)")
        values = _checked({k: v for k, v in data.items() if k != "schema_version"}, fields(cls), "")
        if values.get("gpu") is not None:
            values["gpu"] = GpuEntry.from_dict(values["gpu"])
        values["paths"] = tuple(ServingPath.from_dict(path, i) for i, path in enumerate(values.get("paths", [])))
        # read, the manifest is this version's: an unversioned file has the same fields
        return cls(**values)


def _checked(data: Any, declared: tuple[Field[Any], ...], prefix: str) -> dict[str, Any]:
    """``data``'s fields once each is ``declared`` and of its JSON type; ManifestError names the first that is not
    (``prefix``: where the object sits in the file, "gpu." for the GPU entry)."""
    where = prefix.rstrip(".")
    if not isinstance(data, dict):
        raise ManifestError(where, f"serving manifest {where or 'file'} must be a JSON object, got {data!r}")
    types = {f.name: f.metadata["json"] for f in declared if "json" in f.metadata}
    for name, value in data.items():
        if name not in types:
            raise ManifestError(prefix + name, f"serving manifest has an unknown field {prefix + name!r} (this code "
                                f"reads {', '.join(prefix + k for k in types)})")
        # a JSON true is a Python int too: a bool passes only where the field is one
        if isinstance(value, bool) != (bool in types[name]) or not isinstance(value, types[name]):
            expected = " or ".join(dict.fromkeys(_JSON_NAMES[t] for t in types[name]))
            raise ManifestError(prefix + name, f"serving manifest {prefix + name} must be {expected}, got {value!r}")
    return dict(data)
