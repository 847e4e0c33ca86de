"""The one TOML-to-dataclass loader: keys, types, tables of tables, tagged unions, and where a
bad value came from (the file or a --set override)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from sessionrec.config import from_dict, load_config, read_toml
from sessionrec.errors import ConfigError


@dataclass(frozen=True)
class Arm:
    model: str
    weight: float = 1.0


@dataclass(frozen=True)
class IntRange:
    type: Literal["int"]
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class Choice:
    type: Literal["categorical"]
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Inner:
    depth: int = 2


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner | None = None
    arms: dict[str, Arm] = field(default_factory=dict)
    params: dict[str, IntRange | Choice] = field(default_factory=dict)
    start: datetime.datetime | None = None
    end: datetime.datetime | datetime.date | str | None = None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_table_of_named_tables_is_built_and_checked() -> None:
    cfg = from_dict(Outer, {"arms": {"a": {"model": "pop"}, "b": {"model": "sr", "weight": 2}}})
    assert cfg.arms == {"a": Arm("pop", 1.0), "b": Arm("sr", 2.0)}
    with pytest.raises(ConfigError, match=r"^arms.b.weight: expected a number, got 'x'$"):
        from_dict(Outer, {"arms": {"b": {"model": "sr", "weight": "x"}}})
    with pytest.raises(ConfigError, match=r"^arms.b: expected a table, got 1$"):
        from_dict(Outer, {"arms": {"b": 1}})


def test_a_missing_required_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^arms.a.model: is missing$") as err:
        from_dict(Outer, {"arms": {"a": {"weight": 0.5}}})
    assert err.value.key == "arms.a.model"


def test_a_tagged_union_picks_the_arm_its_tag_names() -> None:
    cfg = from_dict(Outer, {"params": {"k": {"type": "int", "low": 1, "high": 3},
                                       "c": {"type": "categorical", "values": [[1], [2, 2]]}}})
    assert cfg.params["k"] == IntRange("int", 1, 3, 1)
    assert cfg.params["c"] == Choice("categorical", ([1], [2, 2]))
    # the arm's own error, not "matches none of"
    with pytest.raises(ConfigError, match=r"^unknown config key params.k.log \(did you mean "
                                          r"'low'\? valid: low, high, step, type\)$"):
        from_dict(Outer, {"params": {"k": {"type": "int", "low": 1, "high": 3, "log": True}}})
    with pytest.raises(ConfigError, match=r"^params.k.type: 'uniform' is not one of 'int', "
                                          r"'categorical'$"):
        from_dict(Outer, {"params": {"k": {"type": "uniform"}}})


def test_an_optional_table_reports_its_own_error() -> None:
    with pytest.raises(ConfigError, match=r"^unknown config key inner.dept \(did you mean "
                                          r"'depth'\? valid: depth\)$"):
        from_dict(Outer, {"inner": {"dept": 3}})
    assert from_dict(Outer, {"inner": None}).inner is None


def test_dates_are_checked() -> None:
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert from_dict(Outer, {"start": when}).start == when
    with pytest.raises(ConfigError, match=r"^start: expected a date-time, got 20260101$"):
        from_dict(Outer, {"start": 20260101})
    assert from_dict(Outer, {"end": "2026-01-01"}).end == "2026-01-01"
    with pytest.raises(ConfigError, match=r"^end: expected a date-time, a date or a string, got "
                                          r"20260101$"):
        from_dict(Outer, {"end": 20260101})


def test_errors_name_the_file_or_the_override(tmp_path) -> None:
    path = write(tmp_path, 'nme = "y"\n')
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    assert str(err.value) == (f"config file {path}: unknown config key nme (did you mean 'name'? "
                              "valid: name, arms, end, inner, params, start)")
    path = write(tmp_path, 'name = "y"\n')
    with pytest.raises(ConfigError, match=r"^--set inner.depth=deep: inner.depth: expected an "
                                          r"integer, got 'deep'$"):
        load_config(Outer, path, ["inner.depth=deep"])
    with pytest.raises(ConfigError, match=rf"^search space {path}: unknown config key nam "):
        load_config(Outer, path, what="search space", base={"nam": 1})


def test_read_toml_names_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^experiment config .*nope.toml does not exist$"):
        read_toml(tmp_path / "nope.toml", "experiment config")
    path = write(tmp_path, "[a\n")
    with pytest.raises(ConfigError, match=r"^config file .*c.toml is not valid TOML"):
        read_toml(path)
    with pytest.raises(ConfigError, match=r"^reworded$"):
        read_toml(path, reword=lambda text, err: ConfigError("reworded"))
