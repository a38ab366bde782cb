"""Typed errors of the launcher, each with the exit status the command line maps it to.

Setting problems name the field, the value and what was expected, so a wrong flag is fixed in one try.
(``SettingError`` is the launcher's; ``training.config.ConfigError`` is a bad hyperparameter inside the job.)
"""
from __future__ import annotations

from typing import Any


class LauncherError(Exception):
    """Base of every error the launcher raises on purpose; ``exit_status`` is what the CLI exits with."""

    exit_status = 1


class SettingError(LauncherError, ValueError):
    """A setting (flag, environment variable, argument) is missing or has a wrong value: exit status 2."""

    exit_status = 2

    def __init__(self, field: str, value: Any, expected: str, message: str | None = None) -> None:
        super().__init__(message or f"{field}={value!r}: expected {expected}")
        self.field = field
        self.value = value
        self.expected = expected


class JobFailed(LauncherError):
    """A training or transform job, or an endpoint, ended in a state other than the one asked for."""

    def __init__(self, kind: str, name: str, status: str, reason: str | None) -> None:
        super().__init__(f"{kind} {name} ended {status}: {reason or 'no reason given'}")
        self.kind = kind
        self.name = name
        self.status = status
        self.reason = reason


class WaitTimeout(LauncherError):
    """Waiting went on for longer than allowed; the remote work itself may still be running."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"gave up waiting for {what} after {seconds:g} s (it may still be running)")


class ResponseError(LauncherError):
    """An endpoint or a server answered something that does not follow our content-type contract."""


class ServerUnreachable(LauncherError):
    """Nothing answers at the server's address (connection refused, unknown host, timeout)."""


def require(ok: bool, field: str, value: Any, expected: str) -> None:
    """Raise SettingError(field, value, expected) unless ``ok``."""
    if not ok:
        raise SettingError(field, value, expected)
