"""Typed request errors: each carries its HTTP status. 4xx only when the caller is at fault."""
from __future__ import annotations

from typing import Any


class RequestError(Exception):
    status = 400
    reason = "Bad Request"

    def __init__(self, message: str, record: int | None = None) -> None:
        prefix = f"record {record}: " if record is not None else ""
        super().__init__(prefix + message)
        self.message = prefix + message
        self.record = record

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.record is not None:
            out["record"] = self.record
        return out


class BadRequest(RequestError):
    status, reason = 400, "Bad Request"


class PayloadTooLarge(RequestError):
    status, reason = 413, "Payload Too Large"


class UnsupportedMediaType(RequestError):
    status, reason = 415, "Unsupported Media Type"


class NotAcceptable(RequestError):
    status, reason = 406, "Not Acceptable"


class ServerError(RequestError):
    """Our fault (a model that fails at run time): 500, never blamed on the caller."""

    status, reason = 500, "Internal Server Error"


class OutOfResources(RequestError):
    """The worker ran out of memory on this batch: 507, as TorchServe itself answers."""

    status, reason = 507, "Insufficient Storage"


#: out-of-memory errors that are not MemoryError: torch's CUDA allocator raises ``torch.OutOfMemoryError`` (a
#: RuntimeError). Matched by class name, so that an ONNX worker never imports torch to ask.
OUT_OF_MEMORY_NAMES = frozenset({"OutOfMemoryError"})


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says memory ran out (host or GPU): the batch failed for want of resources, not a bug."""
    return isinstance(exc, MemoryError) or any(c.__name__ in OUT_OF_MEMORY_NAMES for c in type(exc).__mro__)
