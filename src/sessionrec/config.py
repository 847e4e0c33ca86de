"""Configuration as data: frozen dataclasses loaded from TOML, overridable with ``a.b=c``.

``load_config(Cls, path, overrides)`` builds a nested frozen dataclass from a TOML file (or the
defaults), then applies dotted overrides such as ``filter.min_item_support=10``. Unknown keys,
missing required keys and values of the wrong type raise :class:`ConfigError` naming the dotted
field and the file or override it came from. Besides scalars, lists and nested tables, a field
may be a table of named tables (``dict[str, Table]``) or a union of tables told apart by a
``Literal`` field (``IntParam | FloatParam``, each with ``type: Literal["int"]`` ...).
"""

from __future__ import annotations

import dataclasses
import datetime
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sessionrec.errors import ConfigError, valid_choices

T = TypeVar("T")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into (["a", "b"], parsed value).

    The value is parsed as a TOML value (``10``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``); anything
    that is not valid TOML is kept as a plain string, so ``--set split.method=time`` works unquoted.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _set_nested(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {part!r} is not a table")
        node = child
    node[path[-1]] = value


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where it is lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, where)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where}: {value!r} is not one of {choices}", key=where)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}", key=where)
        item_type = args[0] if args else Any
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}", key=where)
        value_type = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}", key=where)
        return from_dict(tp, value, prefix=where)
    if tp in _SCALARS:
        expected, check = _SCALARS[tp]
        if not check(value):
            raise ConfigError(f"{where}: expected {expected}, got {value!r}", key=where)
        return float(value) if tp is float else value
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# annotation -> (what the error message calls it, the check); TOML's own types
_SCALARS: dict[Any, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", _is_number),
    str: ("a string", lambda v: isinstance(v, str)),
    datetime.datetime: ("a date-time", lambda v: isinstance(v, datetime.datetime)),
    datetime.date: ("a date", lambda v: isinstance(v, datetime.date)),
}


def _coerce_union(value: Any, tp: Any, where: str) -> Any:
    """``X | None``: X's own error; a union of tagged tables: the arm its tag names."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None and len(args) < len(typing.get_args(tp)):
        return None
    if len(args) == 1:
        return _coerce(value, args[0], where)
    tag = _union_tag(args)
    if tag is not None and isinstance(value, Mapping):
        arms = {choice: arm for arm in args
                for choice in typing.get_args(typing.get_type_hints(arm)[tag])}
        if value.get(tag) not in arms:
            raise ConfigError(f"{where}.{tag}: {value.get(tag)!r} is not one of "
                              f"{', '.join(repr(c) for c in arms)}", key=f"{where}.{tag}")
        return from_dict(arms[value[tag]], value, prefix=where)
    for arg in args:
        try:
            return _coerce(value, arg, where)
        except ConfigError:
            continue
    if all(a in _SCALARS for a in args):
        names = [_SCALARS[a][0] for a in args]
        expected = f"{', '.join(names[:-1])} or {names[-1]}"
        raise ConfigError(f"{where}: expected {expected}, got {value!r}", key=where)
    raise ConfigError(f"{where}: {value!r} matches none of {tp}", key=where)


def _union_tag(arms: list[Any]) -> str | None:
    """The field every arm has as a ``Literal`` (e.g. ``type``): the union is tagged by it."""
    if not all(dataclasses.is_dataclass(a) for a in arms):
        return None
    hints = [typing.get_type_hints(a) for a in arms]
    for name in (f.name for f in dataclasses.fields(arms[0])):
        if all(typing.get_origin(h.get(name)) is typing.Literal for h in hints):
            return name
    return None


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and naming missing ones.

    Raises :class:`ConfigError` whose message and ``key`` name the dotted key at fault.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    where = f"{prefix}." if prefix else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key {where}{unknown[0]} "
                          f"({valid_choices(unknown[0], fields)})", key=f"{where}{unknown[0]}")
    missing = [name for name, f in fields.items() if f.init and name not in data
               and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}{missing[0]}: is missing", key=f"{where}{missing[0]}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], f"{where}{name}")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{prefix or cls.__name__}: {err}", key=prefix or None) from err
    return obj


def to_dict(obj: Any) -> Any:
    """Turn a (nested) config dataclass into plain TOML/JSON-friendly data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def read_toml(
    path: str | Path,
    what: str = "config file",
    reword: Callable[[str, tomllib.TOMLDecodeError], ConfigError] | None = None,
) -> dict[str, Any]:
    """The parsed TOML file ``path``; :class:`ConfigError` naming it (``what path``) otherwise.

    ``reword(text, err)`` may turn TOML's own message into one that names the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        if reword is not None:
            raise reword(text, err) from None
        raise ConfigError(f"{what} {path} is not valid TOML: {err}") from err


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
    what: str = "config file",
    reword: Callable[[str, tomllib.TOMLDecodeError], ConfigError] | None = None,
) -> T:
    """Load ``cls`` from defaults, then ``base``, then the TOML file ``path``, then overrides.

    Every config of the project (run, prepare, study, tuning space, experiment, simulation,
    loop) is read here, so a bad key is refused the same way everywhere: the
    :class:`ConfigError` names the key, where it came from (``what path`` or the ``--set``
    override) and, for an unknown key, the valid ones, closest first. ``what`` names the kind
    of file in messages (``"experiment config"``); ``reword``: see :func:`read_toml`.
    """
    tree: dict[str, Any] = {}
    if base:
        tree = deep_merge(tree, base)
    if path is not None:
        tree = deep_merge(tree, read_toml(path, what, reword))
    parsed = [(text, *parse_override(text)) for text in overrides]
    for _, keys, value in parsed:
        _set_nested(tree, keys, value)
    try:
        return from_dict(cls, tree)
    except ConfigError as err:
        origin = _origin(err.key, parsed, None if path is None else f"{what} {path}")
        if origin is None:
            raise
        raise ConfigError(f"{origin}: {err}", key=err.key) from None


def _origin(key: str | None, parsed: list[tuple[str, list[str], Any]],
            source: str | None) -> str | None:
    """Where the value at ``key`` came from: the last override that set it, else ``source``."""
    if key is not None:
        parts = key.replace("[", ".[").split(".")
        for text, keys, _ in reversed(parsed):
            if parts[:len(keys)] == keys or keys[:len(parts)] == parts:
                return f"--set {text}"
    return source


def deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dump_toml(data: Mapping[str, Any]) -> str:
    """Write plain nested data (from :func:`to_dict`) as TOML; ``None`` values are left out."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    for key, value in scalars.items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        _dump_table(lines, [key], value)
    return "\n".join(lines) + "\n"


def _dump_table(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if lines:
        lines.append("")
    lines.append(f"[{'.'.join(path)}]")
    for key, value in scalars.items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in tables.items():
        _dump_table(lines, [*path, key], value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # a table inside a list (e.g. a hybrid's components)
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    raise ConfigError(f"cannot write {value!r} as TOML")
