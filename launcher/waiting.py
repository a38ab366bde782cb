"""Bounded polling: every wait in the launcher goes through one Poller, so tests can make it instant."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from launcher.errors import JobFailed, WaitTimeout, require

T = TypeVar("T")


@dataclass(frozen=True)
class Poller:
    """How often to look and for how long.

    ``sleep`` and ``clock`` are injectable: tests pass ``interval_s=0`` and a ``sleep`` that advances a fake
    job, and the deadline still bounds the loop.
    """

    #: seconds between two looks
    interval_s: float = 30.0
    #: give up (raise WaitTimeout) after this many seconds
    timeout_s: float = 48 * 3600.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        require(self.interval_s >= 0, "interval_s", self.interval_s, "a number of seconds >= 0")
        require(self.timeout_s > 0, "timeout_s", self.timeout_s, "a number of seconds > 0")

    def until(self, probe: Callable[[], T | None], what: str) -> T:
        """Call ``probe`` until it returns something other than None and return that; bounded by timeout_s."""
        deadline = self.clock() + self.timeout_s
        while True:
            result = probe()
            if result is not None:
                return result
            if self.clock() >= deadline:
                raise WaitTimeout(what, self.timeout_s)
            self.sleep(self.interval_s)


def wait_for_status(describe: Callable[[], dict[str, Any]], status_key: str, states: dict[str, bool | None],
                    kind: str, name: str, poller: Poller, emit: Callable[[str], None]) -> dict[str, Any]:
    """Poll ``describe()`` until ``states[status]`` is True (return the description) or False (raise JobFailed
    with its FailureReason), showing each status transition once."""
    seen: list[str] = []

    def probe() -> dict[str, Any] | None:
        described = describe()
        status = described[status_key]
        if not seen or seen[-1] != status:
            seen.append(status)
            emit(f"{kind} {name}: {status}")
        done = states.get(status)
        if done is False:
            raise JobFailed(kind, name, status, described.get("FailureReason"))
        return described if done else None

    return poller.until(probe, f"{kind} {name}")
