"""The hyperparameters a training job is sent: any of TrainConfig's fields, checked here, sent as strings.

``training.config.TrainConfig`` is the only list of them (names, types, defaults, docs and bounds); the launcher's
flags, their ``--help`` and the checks below derive from it. Values are sent the way SageMaker passes them:
``true``/``false``, integers in decimal, floats with ``repr`` (``5e-05``). Fields left unset are not sent, so the
training defaults apply and live in one place.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping

from launcher.errors import SettingError
from training.config import ConfigError as TrainConfigError
from training.config import Hyperparameter, TrainConfig, hyperparameters

#: name -> how it is declared in TrainConfig, in declaration order
FIELDS: dict[str, Hyperparameter] = {h.name: h for h in hyperparameters()}

#: how each Python type becomes the string SageMaker passes
_FORMAT: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "true" if v else "false",
    int: str,
    float: repr,
    str: str,
}
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _type_ok(kind: type, value: Any) -> bool:
    if kind is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


class Hyperparameters:
    """What the training job is asked to do: ``task_name`` plus any other TrainConfig field (None = unset).

    Checked once, when made, with TrainConfig itself, so a bad value fails on the laptop with the job's words.
    """

    def __init__(self, task_name: str, **values: Any) -> None:
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise SettingError("hyperparameters", unknown, f"names among {list(FIELDS)}")
        given = {"task_name": task_name, **{k: v for k, v in values.items() if v is not None}}
        for name, value in given.items():
            kind = FIELDS[name].kind
            if not _type_ok(kind, value):
                raise SettingError(name, value, _EXPECTED[kind])
        self.values: Mapping[str, Any] = MappingProxyType(dict(sorted(given.items(), key=_declared_order)))
        try:  # the job parses these strings with TrainConfig: fail here, with its words, not in the job
            TrainConfig.from_hyperparameters(self.as_sagemaker())
        except TrainConfigError as exc:
            raise SettingError(exc.field, self.values.get(exc.field), "a valid value", message=str(exc)) from None

    @property
    def task_name(self) -> str:
        """The task to train."""
        return str(self.values["task_name"])

    def as_sagemaker(self) -> dict[str, str]:
        """The ``HyperParameters`` map of CreateTrainingJob: the fields that are set, as strings."""
        return {name: _FORMAT[FIELDS[name].kind](value) for name, value in self.values.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hyperparameters) and dict(self.values) == dict(other.values)

    def __hash__(self) -> int:
        return hash(tuple(self.values.items()))

    def __repr__(self) -> str:
        return f"Hyperparameters({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"


def _declared_order(item: tuple[str, Any]) -> int:
    return list(FIELDS).index(item[0])
