"""trivago adapter: only item actions become events, references are hotel ids."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "trivago"
HEADER = ("user_id,session_id,timestamp,step,action_type,reference,platform,city,device,"
          "current_filters,impressions,prices\n")
# 1541599523 is 2018-11-07 14:05:23 UTC.
ROWS = (
    'U1,s1,1541599523,1,search for destination,"Marseille, France",FR,"Marseille, France",'
    "tablet,,,\n"
    'U1,s1,1541599538,2,interaction item image,100131,FR,"Marseille, France",tablet,,,\n'
    'U1,s1,1541599540,3,filter selection,Sort by Price,FR,"Marseille, France",tablet,,,\n'
    'U1,s1,1541599553,4,clickout item,913787,FR,"Marseille, France",tablet,,'
    "100131|913787,71|107\n"
    'U2,s2,1541599600,1,search for item,5967314,DE,"Berlin, Germany",mobile,,,\n'
    'U2,s2,1541599601,2,interaction item info,unknown,DE,"Berlin, Germany",mobile,,,\n'
    'U2,s2,1541599602,3,interaction item deals,5967314,DE,"Berlin, Germany",mobile,,,\n'
)


def read(path: Path) -> pl.DataFrame:
    lf = get_source("trivago").read(path)
    validate_schema(lf.collect_schema(), "trivago")
    return lf.collect()


def write(tmp_path: Path, rows: str = ROWS, header: str = HEADER) -> Path:
    path = tmp_path / "train.csv"
    path.write_text(header + rows)
    return path


def test_item_actions_become_events(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    want = pl.DataFrame({
        "session_id": ["s1", "s1", "s2", "s2"],
        "user_id": ["U1", "U1", "U2", "U2"],
        "item_id": pl.Series([100131, 913787, 5967314, 5967314], dtype=pl.Int64),
        "ts": pl.Series([datetime(2018, 11, 7, 14, 5, 38, tzinfo=UTC),
                         datetime(2018, 11, 7, 14, 5, 53, tzinfo=UTC),
                         datetime(2018, 11, 7, 14, 6, 40, tzinfo=UTC),
                         datetime(2018, 11, 7, 14, 6, 42, tzinfo=UTC)], dtype=TS_DTYPE),
        "event_type": ["interaction item image", "clickout item", "search for item",
                       "interaction item deals"],
    })
    with caplog.at_level("WARNING"):
        got = read(write(tmp_path))
    assert_frame_equal(got, want)
    assert "skipped 1 item actions" in caplog.text  # the 'unknown' reference


def test_parquet_in_folder(tmp_path: Path) -> None:
    csv = write(tmp_path)
    pl.read_csv(csv, infer_schema=False).with_columns(
        pl.col("timestamp", "step").cast(pl.Int64)).write_parquet(
        tmp_path / "trivago_val_100k.parquet")
    csv.unlink()
    assert read(tmp_path).height == 4


def test_non_numeric_reference_on_item_row_names_row(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS.replace("913787,FR", "Hotel Astoria,FR"))
    with pytest.raises(DataError, match="Hotel Astoria") as err:
        read(path)
    assert (err.value.path, err.value.column, err.value.row) == (str(path), "reference", 4)


def test_missing_reference_on_item_row_names_row(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS.replace("5967314,DE", ",DE", 1))
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("reference", 5)


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, header=HEADER.replace("action_type", "action"))
    with pytest.raises(DataError, match="action_type") as err:
        read(path)
    assert (err.value.path, err.value.column) == (str(path), "action_type")


def test_unparsable_timestamp_names_row(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS.replace("1541599538", "2018-11-07"))
    with pytest.raises(DataError) as err:
        read(path)
    assert (err.value.column, err.value.row) == ("timestamp", 2)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared trivago data not present")
def test_shared_folder_row_counts() -> None:
    df = read(SHARED)
    # README: 68,538 image + 13,597 clickout + 1,829 info + 1,445 rating + 1,159 deals
    # + 1,044 search-for-item rows = 87,612 item actions, of which 4 'unknown' info rows.
    assert df.height == 87_612 - 4
    assert df["session_id"].n_unique() <= 7_612
    assert (df["event_type"] == "clickout item").sum() == 13_597
