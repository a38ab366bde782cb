"""Run by a TorchServe worker's Python at start-up: ``entrypoints.torchserve`` puts this folder on the workers'
``PYTHONPATH`` (and nothing else: the archive's own code is what workers import).

TorchServe 0.12's worker imports torch in ``ts.protocol.otf_message_handler``, for one ``isinstance(answer,
torch.Tensor)`` that it reaches only for an answer that is neither bytes nor str. Our handler answers bytes, so an
ONNX-served worker would load torch (~170 MB of RSS and a second or more of start-up) for nothing. That module is
imported here with a stand-in ``torch`` that imports the real one at its first attribute access: at once in a
torch-served worker, never in an ONNX one. Nothing else sees the stand-in (it is removed from ``sys.modules``
before any other import), and any other process started with this path is left alone.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import types

#: TorchServe's modules whose torch import the worker defers, and the modules they import eagerly for nothing
DEFERRED = {"ts.protocol.otf_message_handler": ("torch",)}
WORKER_SCRIPT = "model_service_worker.py"


class Deferred(types.ModuleType):
    """A module imported at its first attribute access; the real one serves every access after that."""

    def __getattr__(self, attr: str) -> object:
        return getattr(importlib.import_module(self.__name__), attr)


def defer_imports() -> None:
    """Import each module of ``DEFERRED`` with stand-ins for its heavy imports, then drop the stand-ins."""
    for module, heavy in DEFERRED.items():
        stand_ins = {name: Deferred(name) for name in heavy if name not in sys.modules}
        sys.modules.update(stand_ins)
        try:
            importlib.import_module(module)
        except ImportError:  # not a TorchServe that has this module: nothing to defer
            pass
        finally:
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]


#: lines TorchServe 0.12's worker writes for every request: its "Backend received inference at" stamp and the
#: per-request HandlerTime and PredictionTime metric lines. Each crosses the worker's stdout to the frontend, which
#: parses and logs it again, all on the request's path; nobody reads them here (the metrics API is off, and
#: SageMaker's CloudWatch logs would only fill with them), so the worker never writes them.
PER_REQUEST = {"root": ("Backend received inference at",), "ts.service": ("[METRICS]",),
               "ts.metrics.caching_metric": ("[METRICS]",)}


def _per_request_line(prefixes: tuple[str, ...]) -> logging.Filter:
    class PerRequest(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not (isinstance(record.msg, str) and record.msg.startswith(prefixes))

    return PerRequest()


def quiet_per_request_lines() -> None:
    """Drop ``PER_REQUEST``'s lines where they are logged (a logger's filter sees what is logged to it)."""
    for name, prefixes in PER_REQUEST.items():
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        logger.addFilter(_per_request_line(prefixes))


if sys.argv and os.path.basename(sys.argv[0]) == WORKER_SCRIPT:
    defer_imports()
    quiet_per_request_lines()
