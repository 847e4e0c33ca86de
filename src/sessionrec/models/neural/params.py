"""Typed model parameters: a frozen dataclass per model, checked when the model is built.

A model's parameters are the fields of its dataclass. :func:`parse_params` refuses an unknown
name (suggesting the closest valid one and listing all), a value of the wrong type, and a
value outside the field's range or choices — at construction, naming the parameter — so a
typo never silently trains the default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from sessionrec.config import _coerce
from sessionrec.errors import ConfigError

T = TypeVar("T")


# Parameters that do not change what an epoch computes (a checkpoint may be resumed with
# other values, e.g. more epochs).
NOT_TRAJECTORY = ("n_epochs", "patience", "progress", "threads", "eval_batch")


def trajectory_fingerprint(model: str, params: Mapping[str, Any],
                           not_trajectory: tuple[str, ...] = NOT_TRAJECTORY,
                           **data: Any) -> dict[str, Any]:
    """What a checkpoint must match for a fit to resume from it: the model, ``data`` (e.g.
    ``n_items``, ``vocab``) and every parameter except those in ``not_trajectory``."""
    return {"model": model, **data,
            "params": {k: v for k, v in params.items() if k not in not_trajectory}}


def param(default: Any, *, low: float | None = None, high: float | None = None,
          open_high: bool = False, choices: tuple[Any, ...] | None = None) -> Any:
    """A dataclass field with a valid range (``low <= v <= high``, or ``< high`` with
    ``open_high``) or a set of ``choices``."""
    return dataclasses.field(default=default, metadata={
        "low": low, "high": high, "open_high": open_high, "choices": choices})


def closest(name: str, valid: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or ``""``."""
    match = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _allowed(meta: Mapping[str, Any]) -> str:
    parts = []
    if meta.get("low") is not None:
        parts.append(f">= {meta['low']}")
    if meta.get("high") is not None:
        parts.append(f"{'<' if meta.get('open_high') else '<='} {meta['high']}")
    return " and ".join(parts)


def _check_range(model: str, name: str, value: Any, meta: Mapping[str, Any]) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        hint = closest(str(value), [str(c) for c in choices])
        raise ConfigError(f"{model}: parameter {name} = {value!r} is not one of "
                          f"{', '.join(repr(c) for c in choices)}{hint}")
    low, high = meta.get("low"), meta.get("high")
    for v in value if isinstance(value, tuple) else (value,):
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        too_high = high is not None and (v >= high if meta.get("open_high") else v > high)
        if (low is not None and v < low) or too_high:
            raise ConfigError(f"{model}: parameter {name} = {value!r} is out of range "
                              f"(allowed: {_allowed(meta)})")


def parse_params(cls: type[T], params: Mapping[str, Any], model: str) -> T:
    """Build the parameter dataclass ``cls`` of model ``model`` from keyword values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    valid = sorted(fields)
    for name in params:
        if name not in fields:
            raise ConfigError(f"{model}: unknown parameter {name!r}{closest(name, valid)}; "
                              f"valid parameters: {', '.join(valid)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in params.items():
        v = _coerce(list(value) if isinstance(value, tuple) else value, hints[name],
                    f"{model}: parameter {name}")
        _check_range(model, name, v, fields[name].metadata)
        values[name] = v
    obj = cls(**values)
    for name, f in fields.items():
        if name not in values:
            _check_range(model, name, getattr(obj, name), f.metadata)
    return obj


def as_plain(obj: Any) -> dict[str, Any]:
    """The parameters as JSON-ready values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(obj).items()}
