"""OTTO sample adapter: clicks / carts / orders become view / cart / purchase."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "otto-sample"


def read(path: Path) -> pl.DataFrame:
    lf = get_source("otto").read(path)
    validate_schema(lf.collect_schema(), "otto")
    return lf.collect()


def write(path: Path, types: list[str]) -> Path:
    # 1659304800025 ms is 2022-07-31 22:00:00.025 UTC.
    pl.DataFrame({
        "session": [0, 0, 1], "aid": [1517085, 1563459, 1517085],
        "ts": [1659304800025, 1659304904511, 1659304900000], "type": types,
    }).write_parquet(path)
    return path


def test_event_types_and_times(tmp_path: Path) -> None:
    write(tmp_path / "train_sample.parquet", ["clicks", "carts", "orders"])
    want = pl.DataFrame({
        "session_id": pl.Series([0, 0, 1], dtype=pl.Int64),
        "user_id": pl.Series([None, None, None], dtype=pl.Int64),
        "item_id": pl.Series([1517085, 1563459, 1517085], dtype=pl.Int64),
        "ts": pl.Series([datetime(2022, 7, 31, 22, 0, 0, 25000, tzinfo=UTC),
                         datetime(2022, 7, 31, 22, 1, 44, 511000, tzinfo=UTC),
                         datetime(2022, 7, 31, 22, 1, 40, tzinfo=UTC)], dtype=TS_DTYPE),
        "event_type": ["view", "cart", "purchase"],
    })
    assert_frame_equal(read(tmp_path), want)


def test_unknown_type_names_row(tmp_path: Path) -> None:
    path = write(tmp_path / "train_sample.parquet", ["clicks", "clicks", "returns"])
    with pytest.raises(DataError, match="returns") as err:
        read(path)
    assert (err.value.path, err.value.column, err.value.row) == (str(path), "type", 3)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "train_sample.parquet"
    pl.DataFrame({"session": [0], "ts": [1], "type": ["clicks"]}).write_parquet(path)
    with pytest.raises(DataError, match="aid") as err:
        read(tmp_path)
    assert (err.value.path, err.value.column) == (str(path), "aid")


def test_unparsable_timestamp_in_csv_names_row(tmp_path: Path) -> None:
    path = tmp_path / "train_sample.csv"
    path.write_text("session,aid,ts,type\n0,1,1659304800025,clicks\n0,2,soon,clicks\n")
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("ts", 2)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "train_sample.parquet"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared otto sample not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 862
    assert df["session_id"].n_unique() == 20
    assert df.group_by("event_type").len().sort("event_type").rows() == [
        ("cart", 52), ("purchase", 10), ("view", 800)]
