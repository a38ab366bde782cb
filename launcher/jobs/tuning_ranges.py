"""Tuning ranges and objectives, checked against the one hyperparameter declaration and the task's logged metrics.

A range's type and bounds are ``training.config.TrainConfig``'s (through ``launcher.jobs.hyperparameters.FIELDS``): an
int field gets an integer range, a float field a continuous one, any field a categorical one (``a,b,c``), and both
ends of a range (each value of a categorical one) are checked with TrainConfig itself, so a range whose trials
would fail in the container is refused on the laptop. The objective is a dev metric the training log writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from launcher.errors import SettingError, require
from launcher.jobs.hyperparameters import FIELDS, Hyperparameters
from launcher.jobs.metrics import metric_names
from tasks.kinds import task_kind
from training.config import Hyperparameter
from training.metric_lines import LOSSES

#: the range's optional third part -> SageMaker's ScalingType (none given: Auto, SageMaker chooses)
SCALINGS = {"log": "Logarithmic", "linear": "Linear", "reverse-log": "ReverseLogarithmic"}
#: fields a range may not take: the task is --task, and use_bbox says what the data files hold
FIXED = ("task_name", "use_bbox")
MAX_VALUES = 30  # SageMaker's limit on the values of one categorical range, and on ranges per kind
_RANGE = re.compile(r"(?P<name>[a-z_][a-z0-9_]*)=(?P<spec>.+)")
FORMS = "name=lo:hi[:log|linear|reverse-log] or name=a,b,c"


@dataclass(frozen=True)
class ParameterRange:
    """One ``--range``: its SageMaker kind (Integer, Continuous, Categorical) and its entry in ParameterRanges."""

    name: str
    kind: str
    entry: dict[str, Any]


def tunable() -> list[str]:
    """The hyperparameters a range may take: every TrainConfig field but the fixed ones."""
    return [name for name in FIELDS if name not in FIXED]


def _limits(declared: Hyperparameter) -> str:
    """What a field allows, in words: its type and its declared bounds or choices."""
    return f"{declared.name} is {declared.kind.__name__}: {declared.describe().rsplit(' (', 1)[-1].rstrip(')')}"


def _refuse(item: str, problem: str) -> SettingError:
    """One line naming the flag, the value and the problem (the problem names the field and what it allows)."""
    return SettingError("range", item, problem, message=f"--range {item}: {problem}")


def parse_range(item: str, task: str, static: dict[str, Any]) -> ParameterRange:
    """``--range name=lo:hi[:scale]`` or ``--range name=a,b,c``, typed and bounded by the field's declaration.

    Each end (each value) is checked with TrainConfig together with ``static`` (the fixed hyperparameters), so a
    range whose trial would be refused by the container (``max_steps=0``, a stride too long for a window) is
    refused here."""
    match = _RANGE.fullmatch(item.strip())
    if match is None:
        raise _refuse(item, f"expected {FORMS}")
    name, spec = match.group("name"), match.group("spec")
    if name not in FIELDS:
        raise _refuse(item, f"no hyperparameter {name!r}; tunable: {', '.join(tunable())}")
    declared = FIELDS[name]
    if name in FIXED:
        raise _refuse(item, f"{name} is fixed ({'--task' if name == 'task_name' else 'it describes the data'}); "
                            f"tunable: {', '.join(tunable())}")
    if name in static:
        raise _refuse(item, f"{name} is also given as a fixed value (--{name.replace('_', '-')}); give one of them")
    if "," in spec or declared.kind in (str, bool):
        return _categorical(item, declared, spec.split(","), task, static)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in SCALINGS):
        raise _refuse(item, f"expected {FORMS} ({_limits(declared)})")
    low, high = (_value(item, declared, text) for text in parts[:2])
    if not low < high:
        raise _refuse(item, f"expected lo < hi ({_limits(declared)})")
    scaling = SCALINGS[parts[2]] if len(parts) == 3 else "Auto"
    if scaling != "Linear" and scaling != "Auto":
        _require_range(item, low > 0 and high < (1 if scaling == "ReverseLogarithmic" else float("inf")),
                       f"a {parts[2]} range needs 0 < lo" + (" and hi < 1" if parts[2] == "reverse-log" else ""))
    # zero lies inside many ranges and is where sentinels live (max_steps: 0 trains nothing, -1 means epochs)
    probes = [low, high] + ([declared.kind(0)] if low < 0 < high else [])
    for value in probes:
        _check_value(item, declared, value, task, static)
    kind = "Integer" if declared.kind is int else "Continuous"
    entry = {"Name": name, "MinValue": _text(low), "MaxValue": _text(high), "ScalingType": scaling}
    return ParameterRange(name, kind, entry)


def _categorical(item: str, declared: Hyperparameter, values: list[str], task: str,
                 static: dict[str, Any]) -> ParameterRange:
    values = [v.strip() for v in values]
    _require_range(item, all(values) and len(set(values)) == len(values) and 1 <= len(values) <= MAX_VALUES,
                   f"expected 1-{MAX_VALUES} distinct non-empty values a,b,c ({_limits(declared)})")
    for text in values:
        _check_value(item, declared, _value(item, declared, text), task, static)
    return ParameterRange(declared.name, "Categorical", {"Name": declared.name, "Values": values})


def _value(item: str, declared: Hyperparameter, text: str) -> Any:
    """One end or value, read as the field's type (the container reads the same string the same way)."""
    try:
        if declared.kind is bool:
            return {"true": True, "false": False}[text.strip().lower()]
        return declared.kind(text.strip())
    except (KeyError, ValueError):
        raise _refuse(item, f"{text!r} is not of type {declared.kind.__name__} ({_limits(declared)})") from None


def _check_value(item: str, declared: Hyperparameter, value: Any, task: str, static: dict[str, Any]) -> None:
    try:
        Hyperparameters(task, **{**static, declared.name: value})
    except SettingError as exc:
        raise _refuse(item, f"{_text(value)} is refused: {exc} ({_limits(declared)})") from None


def _require_range(item: str, ok: bool, problem: str) -> None:
    if not ok:
        raise _refuse(item, problem)


def _text(value: Any) -> str:
    """A value as SageMaker's ranges carry it (strings), written as the container parses it."""
    return ("true" if value else "false") if isinstance(value, bool) else repr(value) if isinstance(value, float) \
        else str(value)


def objectives(task: str) -> list[str]:
    """The metrics a tuning job may optimise: the dev split's, as the log writes them.

    The test split's are logged too but would make the test scores of the chosen model optimistic, and
    train_loss scores the training batches; both are refused."""
    return [name for name in metric_names(task) if name.startswith("dev_")]


def objective_direction(task: str, objective: str, maximize: bool | None) -> str:
    """``Maximize`` or ``Minimize``: as asked, or where the direction is a known fact (the task's primary score,
    the losses); otherwise the user must say."""
    allowed = objectives(task)
    require(objective in allowed, "objective", objective, f"one of the metrics {task} logs for dev: "
            f"{', '.join(allowed)} (test_ scores would be optimistic after tuning on them)")
    kind = task_kind(task)
    known = {f"dev_{kind.primary_metric}": kind.greater_is_better, **{loss: False for loss in LOSSES}}
    if maximize is None:
        require(objective in known, "objective", objective, "--maximize or --minimize with it (the direction is "
                f"known only for {', '.join(sorted(n for n in known if n in allowed))})")
        maximize = known[objective]
    return "Maximize" if maximize else "Minimize"
