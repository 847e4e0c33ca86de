"""ByteDance sample adapter: user, video and anonymised time only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.data.sources.bytedance import ALL_COLUMNS
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "bytedance-sample"
# uid user_city item_id author_id item_city channel finish like music_id device time duration
ROWS = ("37448\t115\t567569\t44888\t-1\t0\t0\t0\t1699\t43981\t53085738314\t9\n"
        "8623\t82\t1209192\t10098\t3\t0\t1\t0\t-1\t11996\t86400\t8\n")
WANT = pl.DataFrame({
    "session_id": pl.Series([37448, 8623], dtype=pl.Int64),
    "user_id": pl.Series([37448, 8623], dtype=pl.Int64),
    "item_id": pl.Series([567569, 1209192], dtype=pl.Int64),
    # the anonymised time read as Unix seconds (53085738314 s lands in the year 3652)
    "ts": pl.Series([datetime(3652, 3, 21, 6, 25, 14, tzinfo=UTC),
                     datetime(1970, 1, 2, tzinfo=UTC)], dtype=TS_DTYPE),
})


def read(path: Path) -> pl.DataFrame:
    lf = get_source("bytedance").read(path)
    validate_schema(lf.collect_schema(), "bytedance")
    return lf.collect()


def test_original_headerless_tsv(tmp_path: Path) -> None:
    path = tmp_path / "byterec_sample.txt"
    path.write_text(ROWS)
    assert_frame_equal(read(path), WANT)


def test_parquet_in_folder(tmp_path: Path) -> None:
    pl.read_csv(ROWS.encode(), separator="\t", has_header=False,
                new_columns=list(ALL_COLUMNS)).write_parquet(tmp_path / "byterec_sample.parquet")
    assert_frame_equal(read(tmp_path), WANT)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "byterec_sample.parquet"
    pl.DataFrame({"uid": [1], "item_id": [2]}).write_parquet(path)
    with pytest.raises(DataError, match="time") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "time")


def test_unparsable_time_names_row(tmp_path: Path) -> None:
    path = tmp_path / "byterec_sample.txt"
    path.write_text(ROWS.replace("\t86400\t", "\tyesterday\t"))
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("time", 2)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "byterec_sample.txt"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared bytedance sample not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 200
    assert df["user_id"].n_unique() == 198
