"""Shared adapter helpers (finding files, text parsing) and the registry of all adapters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sessionrec.data.io import scan_text, to_float, to_integer
from sessionrec.data.sources import all_sources
from sessionrec.data.sources._common import find_file, read_columns, sniff, unix_time
from sessionrec.errors import DataError

ADAPTERS = {
    "amazon": ("amazon-s3rec", False, "given", "time"),
    "bytedance": ("bytedance-sample", False, "gap", "time"),
    "diginetica": ("diginetica", False, "given", "time"),
    "otto": ("otto-sample", False, "given", "time"),
    "rees46": ("rees46", True, "given", "time"),
    "retailrocket": ("retailrocket-hgru4rec", True, "given", "given"),
    "taobao": ("taobao", True, "gap", "last_session"),
    "trivago": ("trivago", True, "given", "time"),
    "yoochoose": ("yoochoose-100k", False, "given", "given"),
}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_is_registered_with_its_choices(name: str) -> None:
    source = all_sources()[name]
    got = (source.shared_dir, source.user_aware, source.session_key, source.split)
    assert got == ADAPTERS[name]
    assert source.description


def test_find_file_prefers_parquet_then_pattern_order(tmp_path: Path) -> None:
    for name in ("a.csv.gz", "a.parquet", "b.csv", "notes.md"):
        (tmp_path / name).write_text("x")
    assert find_file(tmp_path, ["a.*"]).name == "a.parquet"
    assert find_file(tmp_path, ["z.*", "b.*"]).name == "b.csv"
    with pytest.raises(DataError, match="no data file"):
        find_file(tmp_path, ["notes.*"])


def test_find_file_rejects_ambiguous_match(tmp_path: Path) -> None:
    (tmp_path / "x_test.csv").write_text("x")
    (tmp_path / "y_test.csv").write_text("x")
    with pytest.raises(DataError, match="several files"):
        find_file(tmp_path, ["*_test.*"])


def test_sniff_separator_and_first_fields(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('"a";b;c\n1;2;3\n')
    assert sniff(path) == (";", ["a", "b", "c"])


def test_scan_text_headerless_reads_every_column_as_text(tmp_path: Path) -> None:
    path = tmp_path / "f.dat"
    path.write_text("1,007,x\n")
    df = scan_text(path, names=["a", "b", "c"]).collect()
    assert df.schema == pl.Schema({"a": pl.String, "b": pl.String, "c": pl.String})
    assert df.row(0) == ("1", "007", "x")


def test_read_columns_treats_numeric_first_field_as_headerless(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("5,6\n")
    assert read_columns(path, ["b"], names=["a", "b"])["b"].to_list() == ["6"]
    path.write_text("a,b\n5,6\n")
    assert read_columns(path, ["b"], names=["a", "b"])["b"].to_list() == ["6"]


def test_to_integer_and_to_float() -> None:
    df = pl.DataFrame({"t": ["1", "-2", None], "i": pl.Series([1, 2, 3], dtype=pl.Int16),
                       "f": [0.5, 1.0, 2.0]})
    assert to_integer(df, "t", Path("x"), nullable=True).to_list() == [1, -2, None]
    assert to_integer(df, "i", Path("x")).dtype == pl.Int64
    assert to_float(df, "t", Path("x"), nullable=True).to_list() == [1.0, -2.0, None]
    assert to_float(df, "f", Path("x")).to_list() == [0.5, 1.0, 2.0]
    with pytest.raises(DataError, match="missing") as err:
        to_integer(df, "t", Path("x"))
    assert err.value.row == 3
    with pytest.raises(DataError, match="Float64"):
        to_integer(df, "f", Path("x"))
    bad = pl.DataFrame({"t": ["1", "1.5"]})
    with pytest.raises(DataError, match=r"'1\.5'") as err:
        to_integer(bad, "t", Path("x"))
    assert (err.value.path, err.value.column, err.value.row) == ("x", "t", 2)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_unix_time_out_of_range_names_row(value: float) -> None:
    df = pl.DataFrame({"t": [1.0, value]})
    with pytest.raises(DataError, match="cannot parse timestamp") as err:
        unix_time(df, "t", Path("x.csv"), "s")
    assert (err.value.column, err.value.row) == ("t", 2)


def test_unix_time_parses_numeric_text() -> None:
    df = pl.DataFrame({"t": ["0.5", "86400"]})
    assert unix_time(df, "t", Path("x.csv"), "s").to_list() == [
        datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)]
