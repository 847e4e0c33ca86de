"""SR-GNN Diginetica dev split adapter: order only, ts a synthetic clock (one session a minute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sessionrec.config import deep_merge, from_dict
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError
from sessionrec.evaluation.evaluator import target_events
from sessionrec.runs import load_splits

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "diginetica-srgnn-dev"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def config() -> PrepareConfig:
    """The source's defaults, as ``sessionrec prepare`` applies them, without partitions."""
    source = get_source("diginetica-srgnn")
    return from_dict(PrepareConfig, deep_merge(source.defaults, {"partitions": 0}))


def read(path: Path) -> pl.DataFrame:
    lf = get_source("diginetica-srgnn").read(path)
    validate_schema(lf.collect_schema(), "diginetica-srgnn")
    return lf.collect()


def write(path: Path, rows: list[tuple[int, int, int]]) -> Path:
    """rows: (session_id, position, item_id), typed as in the shared files."""
    pl.DataFrame(rows, schema={"session_id": pl.Int32, "position": pl.Int16,
                               "item_id": pl.Int32}, orient="row").write_parquet(path)
    return path


def at(minutes: int, ms: int = 0) -> datetime:
    return EPOCH + timedelta(minutes=minutes, milliseconds=ms)


def test_folder_numbers_sessions_in_order_and_test_after_train(tmp_path: Path) -> None:
    # Train sessions 5 and 9 (file order not sorted), test session 0 renumbered after them.
    write(tmp_path / "train_sessions.parquet",
          [(9, 1, 30), (5, 0, 10), (5, 1, 11), (9, 0, 31)])
    write(tmp_path / "test_sessions.parquet", [(0, 0, 11), (0, 1, 10), (0, 2, 11)])
    want = pl.DataFrame({
        "session_id": pl.Series([1, 0, 0, 1, 2, 2, 2], dtype=pl.Int64),
        "user_id": pl.Series([None] * 7, dtype=pl.Int64),
        "item_id": pl.Series([30, 10, 11, 31, 11, 10, 11], dtype=pl.Int64),
        "ts": pl.Series([at(1, 100), at(0), at(0, 100), at(1), at(2), at(2, 100), at(2, 200)],
                        dtype=TS_DTYPE),
        "split": ["train"] * 4 + ["test"] * 3,
    })
    assert_frame_equal(read(tmp_path), want)


def test_single_file_has_no_split(tmp_path: Path) -> None:
    path = write(tmp_path / "test_sessions.parquet", [(3, 0, 7), (3, 1, 8)])
    got = read(path)
    assert got.columns == ["session_id", "user_id", "item_id", "ts"]
    assert got["ts"].to_list() == [at(0), at(0, 100)]


def test_prepare_keeps_order_repeats_and_every_prefix_case(tmp_path: Path) -> None:
    write(tmp_path / "train_sessions.parquet",
          [(0, 0, 1), (0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 1, 3)])
    write(tmp_path / "test_sessions.parquet", [(0, 0, 3), (0, 1, 3), (0, 2, 1)])
    out = tmp_path / "out"
    prepare(get_source("diginetica-srgnn"), tmp_path, out, config())
    splits = load_splits(out)
    # Item codes follow training order of first appearance here: 1 -> 0, 2 -> 1, 3 -> 2.
    assert splits.train.items.tolist() == [0, 1, 0, 1, 2]
    assert splits.test.items.tolist() == [2, 2, 0]  # the immediate repeat is kept
    targets, skipped = target_events(splits.test, "next-item")
    assert (targets.tolist(), skipped) == ([1, 2], 0)


def test_repeated_position_names_row(tmp_path: Path) -> None:
    path = write(tmp_path / "train_sessions.parquet", [(0, 0, 1), (0, 1, 2), (0, 1, 3)])
    with pytest.raises(DataError, match="position 1 twice") as err:
        read(path)
    assert (err.value.path, err.value.column, err.value.row) == (str(path), "position", 2)


def test_position_beyond_the_slot_names_row(tmp_path: Path) -> None:
    path = write(tmp_path / "train_sessions.parquet", [(0, 0, 1), (0, 600, 2)])
    with pytest.raises(DataError, match=r"outside 0\.\.599") as err:
        read(path)
    assert (err.value.column, err.value.row) == ("position", 2)


def test_missing_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "train_sessions.parquet"
    pl.DataFrame({"session_id": [0], "item_id": [1]}).write_parquet(path)
    with pytest.raises(DataError, match="position") as err:
        read(path)
    assert err.value.path == str(path)


def test_folder_without_test_file(tmp_path: Path) -> None:
    write(tmp_path / "train_sessions.parquet", [(0, 0, 1), (0, 1, 2)])
    with pytest.raises(DataError, match="test_sessions"):
        read(tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared diginetica-srgnn-dev data not present")
def test_shared_folder_gives_the_benchmark_counts(tmp_path: Path) -> None:
    out = tmp_path / "dsd"
    prepare(get_source("diginetica-srgnn"), SHARED, out, config())
    splits = load_splits(out)
    assert (splits.train.n_events, splits.train.n_sessions, splits.train.n_items) == (
        837_109, 171_965, 42_988)
    assert (splits.test.n_events, splits.test.n_sessions) == (68_665, 14_664)
    targets, _ = target_events(splits.test, "next-item")
    assert len(targets) == 54_001
    items = splits.test.items[targets]
    assert np.all((items >= 0) & (items < splits.train.n_items))
