"""The serving container's environment: each variable SageMaker (or our launcher) sets, named and parsed once.

Used by ``entrypoints.serve`` (startup errors for bad values), by the TorchServe handler, and by the launcher when
it sets a job's or a model's environment.
"""
from __future__ import annotations

from typing import Mapping

#: how Batch Transform assembles responses (``TransformOutput.AssembleWith``). SageMaker does not tell the
#: container, so the launcher sets it in the job's environment. ``Line`` (the documented set-up, and the default
#: here) appends a newline after every response; ``None`` concatenates responses as they are.
ASSEMBLE_WITH_ENV = "SMTX_ASSEMBLE_WITH"
ASSEMBLE_WITH = ("Line", "None")


def assemble_with(env: Mapping[str, str]) -> str:
    """The AssembleWith of the Batch Transform job (``Line`` when unset); ValueError naming the variable otherwise."""
    raw = env.get(ASSEMBLE_WITH_ENV, "").strip()
    if not raw:
        return "Line"
    for value in ASSEMBLE_WITH:
        if raw.lower() == value.lower():
            return value
    raise ValueError(f"{ASSEMBLE_WITH_ENV}={raw!r} is not valid; expected one of {', '.join(ASSEMBLE_WITH)}")
