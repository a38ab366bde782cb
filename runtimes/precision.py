"""Which of an archive's gated CPU paths a worker serves: the fastest this CPU runs natively, unless
``SMTX_PRECISION`` names a precision.

``make archive`` gates every path our runtimes can serve for the model (``archive.precisions``) and lists them
in serving.json's ``paths``; ``choose_path`` is a pure function of those paths, the CPU's kind
(``runtimes.cpu``) and the requested precision. The order is ``FASTEST``: a table filled from ``make bench``
figures, not guessed. A kind lists only the precisions its hardware runs natively, so ``auto`` never picks bf16
where it is emulated (torch bf16 ran 6x slower than fp32 on an AVX2-only EPYC) or int8 where it gained nothing.
"""
from __future__ import annotations

from tasks.serving_manifest import PATH_NAMES, ServingPath
from tasks.serving_manifest import PRECISION_REQUESTS as REQUESTS

#: per CPU kind, the paths fastest first ("<runtime>-<precision>"), with the figures behind the order: MiniLM-L6
#: sequence classification, 400 bench texts in batches of 32 sorted by length, 2 threads, texts/s.
FASTEST: dict[str, tuple[str, ...]] = {
    # Intel Xeon with amx_bf16 and amx_int8 (issue 21's figures; not measured here: no AMX machine was lent):
    # OpenVINO bf16 655, ONNX Runtime int8 233, OpenVINO fp32 214, ONNX Runtime fp32 147
    "amx": ("openvino-bf16", "onnx-int8", "openvino-fp32", "onnx-fp32"),
    # AMD EPYC with avx512_bf16 and avx512_vnni (make bench 2026-12-07, side by side; NER · classif): ONNX Runtime
    # int8 236.8 · refused by its gate, OpenVINO bf16 227.7 · 234.3, OpenVINO fp32 129.3 · 126.1, ONNX Runtime
    # fp32 117.2 · 124.0 (an exploratory run on classif: int8 300, bf16 278-296)
    "avx512_bf16": ("onnx-int8", "openvino-bf16", "openvino-fp32", "onnx-fp32"),
    # VNNI without bf16 (Cascade Lake, Ice Lake: ml.c5, c6i, m6i): int8 runs on its dot products; unmeasured, so
    # fp32 keeps today's runtime
    "vnni": ("onnx-int8", "onnx-fp32", "openvino-fp32"),
    # neither: fp32 (int8 gained nothing on an AVX2-only EPYC, and bf16 is emulated)
    "avx512": ("onnx-fp32", "openvino-fp32"),
    "avx2": ("onnx-fp32", "openvino-fp32"),
}
#: where SMTX_PRECISION names a precision this CPU does not run natively: still served, in this order
EMULATED = ("onnx-int8", "openvino-bf16", "onnx-fp32", "openvino-fp32")


class PrecisionRequestError(ValueError):
    """SMTX_PRECISION has a value that is not one of ``REQUESTS``."""


def choose_path(paths: tuple[ServingPath, ...], kind: str, requested: str = "auto") -> tuple[ServingPath, str]:
    """The path to serve among the passed ``paths`` for a CPU of ``kind``, and why, in words for the log line.

    ``requested``: auto (the first passed path in ``FASTEST``'s row for the kind); a path name (that path where it
    passed); or a precision (its fastest passed path, emulated where this CPU lacks the units, and the reason says
    so). Where the requested one did not pass, the auto choice serves and the reason says why. ``paths`` must hold
    at least one passed path (the archive's fp32 ONNX path passed wherever ONNX serves)."""
    if requested not in REQUESTS:
        raise PrecisionRequestError(f"SMTX_PRECISION={requested!r} is not valid; expected one of {list(REQUESTS)}")
    passed = {path.name: path for path in paths if path.passed}
    order = FASTEST.get(kind, FASTEST["avx2"])
    ranked = [passed[name] for name in order if name in passed]
    ranked += [path for name, path in passed.items() if name not in order]  # every passed path can serve
    if not ranked:
        raise ValueError("serving.json lists no passed path to serve")
    if requested == "auto":
        best = ranked[0]
        return best, f"the fastest gated path on this {kind} CPU ({_table(order, passed)})"
    if requested in PATH_NAMES:
        if requested in passed:
            return passed[requested], f"SMTX_PRECISION={requested}"
        why = next((p.reason for p in paths if p.name == requested), "the archive has no such path")
        return ranked[0], (f"SMTX_PRECISION={requested} was asked for, but that path did not pass its gate ({why}); "
                           "the fastest gated path serves instead")
    wanted = [path for path in ranked if path.precision == requested]
    if not wanted:
        refused = [f"{p.name}: {p.reason}" for p in paths if p.precision == requested]
        why = "; ".join(refused) if refused else "the archive has no such path"
        return ranked[0], (f"SMTX_PRECISION={requested} was asked for, but no {requested} path passed its gate "
                           f"({why}); the fastest gated path serves instead")
    native = any(name.endswith("-" + requested) for name in order)
    if not native:
        wanted.sort(key=lambda p: EMULATED.index(p.name) if p.name in EMULATED else len(EMULATED))
        return wanted[0], (f"SMTX_PRECISION={requested}, which this {kind} CPU does not run natively: expect it "
                           "slower than the auto choice")
    return wanted[0], f"SMTX_PRECISION={requested}"


def _table(order: tuple[str, ...], passed: dict[str, ServingPath]) -> str:
    """The table's row as the log shows it: each path in order, and whether the archive's gate passed it."""
    return ", ".join(f"{name}{'' if name in passed else ' (not passed)'}" for name in order)
