"""DIGINETICA adapter: views (CSV with NA or Parquet), categories, purchases."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.data.sources.diginetica import read_purchases
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "diginetica"
VIEWS_CSV = (
    "session_id;user_id;item_id;timeframe;eventdate\n"
    "1;NA;81766;526309;2016-05-09\n"
    "1;NA;31331;1031018;2016-05-09\n"
    "2;7;32118;0;2016-01-03\n"
)


def read(path: Path) -> pl.DataFrame:
    lf = get_source("diginetica").read(path)
    validate_schema(lf.collect_schema(), "diginetica")
    return lf.collect()


def write_views_csv(folder: Path, text: str = VIEWS_CSV) -> Path:
    path = folder / "sample_train-item-views.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def write_categories(folder: Path, rows: list[tuple[int, int]]) -> None:
    pl.DataFrame(rows, schema=["itemId", "categoryId"], orient="row").write_parquet(
        folder / "product-categories.parquet")


def views_frame(category: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({
        "session_id": pl.Series([1, 1, 2], dtype=pl.Int64),
        "user_id": pl.Series([None, None, 7], dtype=pl.Int64),
        "item_id": pl.Series([81766, 31331, 32118], dtype=pl.Int64),
        # eventdate midnight + timeframe ms: 526309 ms = 8 min 46.309 s, 1031018 ms = 17:11.018.
        "ts": pl.Series([datetime(2016, 5, 9, 0, 8, 46, 309000, tzinfo=UTC),
                         datetime(2016, 5, 9, 0, 17, 11, 18000, tzinfo=UTC),
                         datetime(2016, 1, 3, tzinfo=UTC)], dtype=TS_DTYPE),
        "event_type": ["view"] * 3,
        "category": pl.Series(category, dtype=pl.String),
    })


def test_csv_views_with_categories(tmp_path: Path) -> None:
    write_views_csv(tmp_path)
    write_categories(tmp_path, [(999, 1), (32118, 5), (81766, 1010), (31331, 1096)])
    assert_frame_equal(read(tmp_path), views_frame(["1010", "1096", "5"]))


def test_parquet_views_preferred_and_item_without_category(tmp_path: Path) -> None:
    write_views_csv(tmp_path, VIEWS_CSV.replace("81766", "1"))  # the CSV must be ignored
    pl.DataFrame({
        "session_id": [1, 1, 2], "user_id": [None, None, 7], "item_id": [81766, 31331, 32118],
        "timeframe": [526309, 1031018, 0],
        "eventdate": [date(2016, 5, 9), date(2016, 5, 9), date(2016, 1, 3)],
    }).write_parquet(tmp_path / "sample_train-item-views.parquet")
    write_categories(tmp_path, [(81766, 1010), (32118, 5)])
    assert_frame_equal(read(tmp_path), views_frame(["1010", None, "5"]))


def test_views_file_without_categories_has_no_category(tmp_path: Path) -> None:
    path = write_views_csv(tmp_path)
    assert_frame_equal(read(path), views_frame([None, None, None]).drop("category"))


def test_purchases(tmp_path: Path) -> None:
    pl.DataFrame({
        "sessionId": [150, 151], "userId": [18278, None], "timeframe": [17100868, 1000],
        "eventdate": [date(2016, 5, 6), date(2016, 5, 7)], "ordernumber": [16421, 16290],
        "itemId": [25911, 175874],
    }).write_parquet(tmp_path / "train-purchases.parquet")
    write_categories(tmp_path, [(25911, 3), (175874, 4)])
    lf = read_purchases(tmp_path)
    validate_schema(lf.collect_schema(), "diginetica purchases")
    want = pl.DataFrame({
        "session_id": pl.Series([150, 151], dtype=pl.Int64),
        "user_id": pl.Series([18278, None], dtype=pl.Int64),
        "item_id": pl.Series([25911, 175874], dtype=pl.Int64),
        # 17100868 ms = 4 h 45 min 0.868 s
        "ts": pl.Series([datetime(2016, 5, 6, 4, 45, 0, 868000, tzinfo=UTC),
                         datetime(2016, 5, 7, 0, 0, 1, tzinfo=UTC)], dtype=TS_DTYPE),
        "event_type": ["purchase", "purchase"],
        "category": ["3", "4"],
    })
    assert_frame_equal(lf.collect(), want)


def test_item_with_two_categories_is_an_error(tmp_path: Path) -> None:
    write_views_csv(tmp_path)
    write_categories(tmp_path, [(81766, 1), (5, 2), (81766, 3)])
    with pytest.raises(DataError, match="several rows") as err:
        read(tmp_path)
    assert err.value.path == str(tmp_path / "product-categories.parquet")
    assert (err.value.column, err.value.row) == ("itemId", 1)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write_views_csv(tmp_path, "session_id;user_id;item_id;eventdate\n1;NA;2;2016-05-09\n")
    with pytest.raises(DataError, match="timeframe") as err:
        read(tmp_path)
    assert (err.value.path, err.value.column) == (str(path), "timeframe")


def test_unparsable_date_names_row(tmp_path: Path) -> None:
    write_views_csv(tmp_path, VIEWS_CSV.replace("2016-01-03", "2016-02-30"))
    with pytest.raises(DataError) as err:
        read(tmp_path)
    assert (err.value.column, err.value.row) == ("eventdate", 3)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "sample_train-item-views.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read(tmp_path)


def test_folder_without_views(tmp_path: Path) -> None:
    write_categories(tmp_path, [(1, 2)])
    with pytest.raises(DataError, match="train-item-views"):
        read(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared diginetica data not present")
def test_shared_folder_row_counts() -> None:
    views = read(SHARED)
    assert views.height == 12_391
    assert views["session_id"].n_unique() == 2_986
    assert views["category"].null_count() == 0
    purchases = read_purchases(SHARED).collect()
    assert purchases.height == 18_025
    assert purchases["user_id"].null_count() == 11_322
