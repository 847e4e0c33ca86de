"""YOOCHOOSE adapter: the prepared session-rec TSVs and the raw yoochoose-clicks.dat."""

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

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "yoochoose-100k"
HEADER = "SessionId\tItemId\tTime\n"


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def read(path: Path) -> pl.DataFrame:
    lf = get_source("yoochoose").read(path)
    validate_schema(lf.collect_schema(), "yoochoose")
    return lf.collect()


def expected(rows: list[tuple], **extra: list) -> pl.DataFrame:
    session, item, ts = zip(*rows, strict=True)
    return pl.DataFrame({
        "session_id": pl.Series(session, dtype=pl.Int64),
        "user_id": pl.Series([None] * len(rows), dtype=pl.Int64),
        "item_id": pl.Series(item, dtype=pl.Int64),
        "ts": pl.Series(ts, dtype=TS_DTYPE),
        **{k: pl.Series(v, dtype=pl.String) for k, v in extra.items()},
    })


def test_folder_reads_train_full_and_test_with_split(tmp_path: Path) -> None:
    # 1396915200 is 2014-04-08 00:00:00 UTC.
    write_gz(tmp_path / "clicks_train_full.tsv.gz",
             HEADER + "7\t214536502\t1396828800.25\n7\t214536506\t1396828860\n")
    write_gz(tmp_path / "clicks_train_tr.tsv.gz", HEADER + "99\t1\t1396828800\n")  # not read
    write_gz(tmp_path / "clicks_test.tsv.gz",
             HEADER + "3\t214536500\t1396915200.5\n3\t214536502\t1396915260\n")
    got = read(tmp_path)
    want = expected(
        [(7, 214536502, datetime(2014, 4, 7, 0, 0, 0, 250000, tzinfo=UTC)),
         (7, 214536506, datetime(2014, 4, 7, 0, 1, 0, tzinfo=UTC)),
         (3, 214536500, datetime(2014, 4, 8, 0, 0, 0, 500000, tzinfo=UTC)),
         (3, 214536502, datetime(2014, 4, 8, 0, 1, 0, tzinfo=UTC))],
        split=["train", "train", "test", "test"],
    )
    assert_frame_equal(got, want)


def test_single_prepared_file_has_no_split(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "clicks_train_tr.tsv.gz", HEADER + "5\t42\t1396915200\n")
    assert_frame_equal(read(path), expected([(5, 42, datetime(2014, 4, 8, tzinfo=UTC))]))


def test_raw_dat_without_header_keeps_category(tmp_path: Path) -> None:
    path = tmp_path / "yoochoose-clicks.dat"
    path.write_text("1,2014-04-07T10:51:09.277Z,214536502,0\n"
                    "1,2014-04-07T10:54:09.868Z,214536500,S\n"
                    "2,2014-04-06T18:20:08.000Z,214577561,2053877473\n")
    want = expected(
        [(1, 214536502, datetime(2014, 4, 7, 10, 51, 9, 277000, tzinfo=UTC)),
         (1, 214536500, datetime(2014, 4, 7, 10, 54, 9, 868000, tzinfo=UTC)),
         (2, 214577561, datetime(2014, 4, 6, 18, 20, 8, tzinfo=UTC))],
        category=["0", "S", "2053877473"],
    )
    assert_frame_equal(read(path), want)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "c_train_full.tsv.gz", "SessionId\tItem\tTime\n1\t2\t3\n")
    with pytest.raises(DataError, match="ItemId") as err:
        read(path)
    assert err.value.path == str(path)
    assert err.value.column == "ItemId"


def test_unparsable_time_names_row(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "c_test.tsv.gz", HEADER + "1\t2\t1396915200\n1\t3\tnoon\n")
    with pytest.raises(DataError, match="row 2") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("Time", 2)


def test_unparsable_raw_timestamp_names_row(tmp_path: Path) -> None:
    path = tmp_path / "clicks.dat"
    path.write_text("1,2014-04-07T10:51:09.277Z,1,0\n1,2014-13-45T10:54:09Z,2,0\n")
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.path, err.value.column, err.value.row) == (str(path), "Timestamp", 2)


def test_non_utf8_raw_text_names_row(tmp_path: Path) -> None:
    path = tmp_path / "clicks.dat"
    path.write_bytes(b"1,2014-04-07T10:51:09Z,1,0\n1,2014-04-07T10:52:09Z,2,\xff\n")
    with pytest.raises(DataError, match="UTF-8") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("Category", 2)


def test_non_numeric_item_names_row(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "c.tsv.gz", HEADER + "1\t2\t1396915200\n1\tabc\t1396915201\n")
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("ItemId", 2)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "clicks.dat"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read(path)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "c_test.tsv.gz", HEADER)
    with pytest.raises(DataError, match="no rows"):
        read(path)


def test_folder_without_test_file(tmp_path: Path) -> None:
    write_gz(tmp_path / "c_train_full.tsv.gz", HEADER + "1\t2\t1396915200\n")
    with pytest.raises(DataError, match="_test"):
        read(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared yoochoose-100k data not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    assert df.height == 70_278 + 13_568
    assert df.group_by("split").len().sort("split").rows() == [("test", 13_568),
                                                              ("train", 70_278)]
    assert df["session_id"].n_unique() == 17_794 + 3_416
