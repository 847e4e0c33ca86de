"""Retailrocket (HGRU4Rec split) adapter: train + test with split labels, ms timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "retailrocket-hgru4rec"


def read(path: Path) -> pl.DataFrame:
    lf = get_source("retailrocket").read(path)
    validate_schema(lf.collect_schema(), "retailrocket")
    return lf.collect()


def write_split(path: Path, rows: list[tuple[int, int, int, int]]) -> Path:
    """rows: (timestamp ms, visitorid, itemid, session_id), typed as in the HDF export."""
    df = pl.DataFrame(rows, schema=["timestamp", "visitorid", "itemid", "session_id"],
                      orient="row")
    df.with_columns(source_index=pl.int_range(pl.len()) + 100,
                    session_id=pl.col("session_id").cast(pl.Int32)).write_parquet(path)
    return path


def test_folder_reads_train_and_test_with_split(tmp_path: Path) -> None:
    # 1441864236661 ms is 2015-09-10 05:50:36.661 UTC.
    write_split(tmp_path / "train.parquet",
                [(1441864236661, 1014, 178797, 1778), (1441864237111, 1014, 311775, 1778)])
    write_split(tmp_path / "test.parquet", [(1441864300000, 1014, 178797, 1779)])
    write_split(tmp_path / "valid_train.parquet", [(1, 2, 3, 4)])  # not read
    want = pl.DataFrame({
        "session_id": pl.Series([1778, 1778, 1779], dtype=pl.Int64),
        "user_id": pl.Series([1014, 1014, 1014], dtype=pl.Int64),
        "item_id": pl.Series([178797, 311775, 178797], dtype=pl.Int64),
        "ts": pl.Series([datetime(2015, 9, 10, 5, 50, 36, 661000, tzinfo=UTC),
                         datetime(2015, 9, 10, 5, 50, 37, 111000, tzinfo=UTC),
                         datetime(2015, 9, 10, 5, 51, 40, tzinfo=UTC)], dtype=TS_DTYPE),
        "split": ["train", "train", "test"],
    })
    assert_frame_equal(read(tmp_path), want)


def test_single_file_has_no_split(tmp_path: Path) -> None:
    path = write_split(tmp_path / "valid_test.parquet", [(0, 5, 6, 7)])
    got = read(path)
    assert got.columns == ["session_id", "user_id", "item_id", "ts"]
    assert got.row(0) == (7, 5, 6, datetime(1970, 1, 1, tzinfo=UTC))


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pl.DataFrame({"timestamp": [1], "itemid": [2], "session_id": [3]}).write_parquet(path)
    with pytest.raises(DataError, match="visitorid") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "visitorid")


def test_unparsable_timestamp_in_csv_names_row(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("timestamp,visitorid,itemid,session_id\n1441864236661,1,2,3\nlater,1,2,3\n")
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.path, err.value.column, err.value.row) == (str(path), "timestamp", 2)


def test_missing_user_names_row(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pl.DataFrame({"timestamp": [1, 2], "visitorid": [1, None], "itemid": [2, 2],
                  "session_id": [3, 3]}).write_parquet(path)
    with pytest.raises(DataError, match="missing") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("visitorid", 2)


def test_wrong_type_names_column(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pl.DataFrame({"timestamp": [1], "visitorid": [1], "itemid": [2.5],
                  "session_id": [3]}).write_parquet(path)
    with pytest.raises(DataError, match="Float64") as err:
        read(path)
    assert err.value.column == "itemid"


def test_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "train.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read(empty)
    no_rows = tmp_path / "test.parquet"
    write_split(no_rows, [])
    with pytest.raises(DataError, match="no rows"):
        read(no_rows)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared retailrocket data not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 7_303 + 874
    assert df.group_by("split").len().sort("split").rows() == [("test", 874), ("train", 7_303)]
    assert df["user_id"].n_unique() == 779 + 166  # test users without training sessions
