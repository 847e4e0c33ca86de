"""Amazon (S3-Rec) adapter: one session per user, synthetic daily timestamps, brand ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "amazon-s3rec"


def read(path: Path) -> pl.DataFrame:
    lf = get_source("amazon").read(path)
    validate_schema(lf.collect_schema(), "amazon")
    return lf.collect()


def write_sequences(path: Path, rows: list[tuple[int, int, int]]) -> Path:
    pl.DataFrame(rows, schema={"user_id": pl.Int32, "position": pl.Int16, "item_id": pl.Int32},
                 orient="row").write_parquet(path)
    return path


def write_attributes(path: Path, rows: list[tuple[int, int, int]]) -> None:
    pl.DataFrame(rows, schema={"item_id": pl.Int32, "attr_position": pl.Int16,
                               "attribute_id": pl.Int32}, orient="row").write_parquet(path)


def test_sequences_with_brand(tmp_path: Path) -> None:
    path = write_sequences(tmp_path / "Toys_sequences.parquet",
                           [(1, 0, 10), (1, 1, 11), (1, 2, 10), (2, 0, 12)])
    # item 10: brand 7 then categories 8, 9; item 11: attribute 5 first; item 12: none.
    write_attributes(tmp_path / "Toys_item_attributes.parquet",
                     [(10, 0, 7), (10, 1, 8), (10, 2, 9), (11, 0, 5)])
    want = pl.DataFrame({
        "session_id": pl.Series([1, 1, 1, 2], dtype=pl.Int64),
        "user_id": pl.Series([1, 1, 1, 2], dtype=pl.Int64),
        "item_id": pl.Series([10, 11, 10, 12], dtype=pl.Int64),
        "ts": pl.Series([datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC),
                         datetime(2000, 1, 3, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)],
                        dtype=TS_DTYPE),
        "brand": ["7", "5", "7", None],
    })
    assert_frame_equal(read(path), want)


def test_folder_reads_beauty_without_attributes(tmp_path: Path) -> None:
    write_sequences(tmp_path / "Beauty_sequences.parquet", [(3, 0, 4), (3, 1, 5)])
    write_sequences(tmp_path / "Toys_sequences.parquet", [(9, 0, 9)])
    got = read(tmp_path)
    assert got.columns == ["session_id", "user_id", "item_id", "ts"]
    assert got["item_id"].to_list() == [4, 5]
    assert got["ts"].to_list() == [datetime(2000, 1, 1, tzinfo=UTC),
                                   datetime(2000, 1, 2, tzinfo=UTC)]


def test_two_brands_for_one_item_names_file_row(tmp_path: Path) -> None:
    path = write_sequences(tmp_path / "Toys_sequences.parquet", [(1, 0, 10)])
    write_attributes(tmp_path / "Toys_item_attributes.parquet",
                     [(10, 0, 7), (10, 1, 8), (11, 0, 5), (10, 0, 9)])
    with pytest.raises(DataError, match="position 0") as err:
        read(path)
    assert err.value.path == str(tmp_path / "Toys_item_attributes.parquet")
    assert (err.value.column, err.value.row) == ("attr_position", 1)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "Beauty_sequences.parquet"
    pl.DataFrame({"user_id": [1], "item_id": [2]}).write_parquet(path)
    with pytest.raises(DataError, match="position") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "position")


def test_missing_position_names_row(tmp_path: Path) -> None:
    path = tmp_path / "Beauty_sequences.parquet"
    pl.DataFrame({"user_id": [1, 1], "position": [0, None], "item_id": [2, 3]}).write_parquet(path)
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("position", 2)


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "Beauty_sequences.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read(tmp_path)
    path = write_sequences(tmp_path / "Toys_sequences.parquet", [])
    with pytest.raises(DataError, match="no rows"):
        read(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared amazon-s3rec data not present")
@pytest.mark.parametrize(("name", "rows", "users"), [
    ("Beauty", 198_502, 22_363),
    ("Sports_and_Outdoors", 296_337, 35_598),
    ("Toys_and_Games", 167_597, 19_412),
])
def test_shared_row_counts(name: str, rows: int, users: int) -> None:
    df = read(SHARED / f"{name}_sequences.parquet")
    assert (df.height, df["session_id"].n_unique()) == (rows, users)
    assert df["brand"].null_count() == 0  # every item has an attribute


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared amazon-s3rec data not present")
def test_shared_folder_reads_beauty() -> None:
    assert read(SHARED).height == 198_502
