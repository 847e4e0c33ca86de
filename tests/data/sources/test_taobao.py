"""Taobao UserBehavior adapter: headerless original CSV, headered CSV, Parquet."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "taobao"
HEADER = "user_id,item_id,category_id,behavior_type,timestamp\n"
ROWS = ("1,2268318,2520377,pv,1511544070\n"
        "1,2333346,2520771,buy,1511561733\n"
        "100,2576651,149192,cart,1511572885\n"
        "100,2576651,149192,fav,1511572886\n")
WANT = pl.DataFrame({
    "session_id": pl.Series([1, 1, 100, 100], dtype=pl.Int64),
    "user_id": pl.Series([1, 1, 100, 100], dtype=pl.Int64),
    "item_id": pl.Series([2268318, 2333346, 2576651, 2576651], dtype=pl.Int64),
    "ts": pl.Series([datetime(2017, 11, 24, 17, 21, 10, tzinfo=UTC),
                     datetime(2017, 11, 24, 22, 15, 33, tzinfo=UTC),
                     datetime(2017, 11, 25, 1, 21, 25, tzinfo=UTC),
                     datetime(2017, 11, 25, 1, 21, 26, tzinfo=UTC)], dtype=TS_DTYPE),
    "event_type": ["view", "purchase", "cart", "fav"],
    "category": ["2520377", "2520771", "149192", "149192"],
})


def read(path: Path) -> pl.DataFrame:
    lf = get_source("taobao").read(path)
    validate_schema(lf.collect_schema(), "taobao")
    return lf.collect()


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def test_original_headerless_csv(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text(ROWS)
    assert_frame_equal(read(path), WANT)


def test_headered_csv_gz_in_folder(tmp_path: Path) -> None:
    write_gz(tmp_path / "UserBehavior.csv.gz", HEADER + ROWS)
    assert_frame_equal(read(tmp_path), WANT)


def test_parquet_wins_in_folder(tmp_path: Path) -> None:
    write_gz(tmp_path / "UserBehavior.csv.gz", HEADER + "9,9,9,pv,0\n")
    pl.read_csv((HEADER + ROWS).encode()).write_parquet(tmp_path / "UserBehavior.parquet")
    assert_frame_equal(read(tmp_path), WANT)


def test_unknown_behaviour_names_row(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text(ROWS.replace("cart", "click"))
    with pytest.raises(DataError, match="click") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("behavior_type", 3)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "UserBehavior.csv.gz",
                    "user_id,item_id,category,behavior_type,timestamp\n1,2,3,pv,4\n")
    with pytest.raises(DataError, match="category_id") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "category_id")


def test_unparsable_timestamp_names_row(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text(ROWS + "100,1,2,pv,\n")
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("timestamp", 5)


def test_wrong_number_of_fields_in_headerless_file(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,2,3,pv\n")
    with pytest.raises(DataError, match="cannot read") as err:
        read(path)
    assert err.value.path == str(path)


def test_empty_file(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "UserBehavior.csv.gz", "")
    with pytest.raises(DataError) as err:
        read(path)
    assert err.value.path == str(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared taobao data not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 84_475
    assert df["user_id"].n_unique() == 815
    assert df.group_by("event_type").len().sort("event_type").rows() == [
        ("cart", 4_497), ("fav", 2_356), ("purchase", 1_750), ("view", 75_872)]
