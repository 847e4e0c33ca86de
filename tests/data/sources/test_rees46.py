"""REES46 adapter: the original CSV (``... UTC`` times), the Parquet head, folders of months."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "rees46"
HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
          "user_session\n")
ROWS = (
    "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,"
    "72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
    "2019-10-01 00:00:01 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater"
    ",,0.0,554748717,9333dfbd-b87a-4708-9857-6336556b0fcc\n"
)
WANT = pl.DataFrame({
    "session_id": ["72d76fde-8bb3-4e00-8c23-a032dfed738c", "9333dfbd-b87a-4708-9857-6336556b0fcc"],
    "user_id": pl.Series([541312140, 554748717], dtype=pl.Int64),
    "item_id": pl.Series([44600062, 3900821], dtype=pl.Int64),
    "ts": pl.Series([datetime(2019, 10, 1, tzinfo=UTC), datetime(2019, 10, 1, 0, 0, 1, tzinfo=UTC)],
                    dtype=TS_DTYPE),
    "event_type": ["view", "cart"],
    "brand": ["shiseido", None],
    "category": ["2103807459595387724", "appliances.environment.water_heater"],
    "price": [35.79, 0.0],
})


def read(path: Path) -> pl.DataFrame:
    lf = get_source("rees46").read(path)
    validate_schema(lf.collect_schema(), "rees46")
    return lf.collect()


def test_original_csv(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(HEADER + ROWS)
    assert_frame_equal(read(path), WANT)


def test_parquet_with_datetime_column(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct_head.parquet"
    pl.read_csv((HEADER + ROWS).encode()).with_columns(
        pl.col("event_time").str.strip_suffix(" UTC").str.to_datetime(time_unit="ms",
                                                                       time_zone="UTC"),
    ).write_parquet(path)
    assert_frame_equal(read(path), WANT)


def test_folder_reads_every_month_in_name_order(tmp_path: Path) -> None:
    first, second = ROWS.splitlines(keepends=True)
    (tmp_path / "2019-Nov.csv").write_text(HEADER + second)
    (tmp_path / "2019-Oct.csv").write_text(HEADER + first)
    (tmp_path / "README.md").write_text("not data")
    # "2019-Nov" sorts before "2019-Oct": the folder is read in name order, not by month.
    assert_frame_equal(read(tmp_path), WANT.reverse())


def test_missing_session_names_row(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(HEADER + ROWS + "2019-10-01 00:00:02 UTC,view,1,2,,,1.0,3,\n")
    with pytest.raises(DataError, match="missing") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("user_session", 3)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(HEADER.replace("user_session", "session") + ROWS)
    with pytest.raises(DataError, match="user_session") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "user_session")


def test_unparsable_time_names_row(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(HEADER + ROWS.replace("2019-10-01 00:00:01", "2019-10-01 25:00:01"))
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("event_time", 2)


def test_unparsable_price_names_row(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(HEADER + ROWS.replace("35.79", "cheap"))
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("price", 1)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared rees46 data not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 17_434
    assert df["session_id"].n_unique() == 5_066
    assert df["brand"].null_count() == 2_477
    assert (df["price"] == 0.0).sum() == 19
