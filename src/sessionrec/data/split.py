"""Train / valid / test labels: last-session-out per user, by time, or as the source gives them.

A labeller is a pure ``DataFrame -> DataFrame`` function that sets the ``split`` column. The
filter step calls it on every pass (see :mod:`sessionrec.data.filter`), because which session is
a user's last one can change when filtering removes sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import polars as pl

from sessionrec.errors import DataError

Labeller = Callable[[pl.DataFrame], pl.DataFrame]


def label_last_session(df: pl.DataFrame, *, valid: bool) -> pl.DataFrame:
    """Each user's last session is test, the one before it valid (if ``valid``), rest train.

    Session ids must count up in time order within a user (as :func:`sessionize` writes them).
    A user with a single session has nothing to condition a test session on, so it stays in
    train; a user with two sessions gets train + test and no valid session.
    """
    from_end = pl.col("session_id").rank("dense", descending=True).over("user_id")
    n_sessions = pl.col("session_id").n_unique().over("user_id")
    label = (
        pl.when(n_sessions == 1).then(pl.lit("train"))
        .when(from_end == 1).then(pl.lit("test"))
        .when((from_end == 2) & (n_sessions >= 3) & valid).then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
    )
    return df.with_columns(split=label)


def time_cutoffs(max_ts: datetime, test_days: float, valid_days: float,
                 valid: bool) -> tuple[datetime, datetime | None]:
    """(test start, valid start or None): the last ``test_days`` are test, the days before valid."""
    test_start = max_ts - timedelta(days=test_days)
    valid_start = test_start - timedelta(days=valid_days) if valid else None
    return test_start, valid_start


def label_by_time(df: pl.DataFrame, *, test_start: datetime,
                  valid_start: datetime | None) -> pl.DataFrame:
    """Sessions that *end* at or after ``test_start`` are test (as GRU4Rec's preprocessing).

    Every train event therefore happens before the test period; a test session may have begun
    shortly before it. Sessions ending in ``[valid_start, test_start)`` are valid.
    """
    end = pl.col("ts").max().over("session_id")
    label = pl.when(end >= test_start).then(pl.lit("test"))
    if valid_start is not None:
        label = label.when(end >= valid_start).then(pl.lit("valid"))
    return df.with_columns(split=label.otherwise(pl.lit("train")))


def label_given(df: pl.DataFrame, *, valid_start: datetime | None) -> pl.DataFrame:
    """Keep the source's own train/test labels; optionally carve valid from the end of train."""
    if "split" not in df.columns:
        raise DataError("split method 'given' needs a source that ships its split",
                        column="split", hint="use --set split.method=time or last_session")
    bad = df.filter(~pl.col("split").is_in(["train", "valid", "test"]))
    if len(bad):
        raise DataError(f"unknown split label {bad['split'][0]!r}", column="split")
    if valid_start is None:
        return df
    end = pl.col("ts").max().over("session_id")
    carve = (pl.col("split") == "train") & (end >= valid_start)
    return df.with_columns(split=pl.when(carve).then(pl.lit("valid")).otherwise("split"))


def given_valid_start(df: pl.DataFrame, valid_days: float) -> datetime:
    """Start of the validation period carved from the end of a given training split."""
    train_max = df.filter(pl.col("split") == "train")["ts"].max()
    if train_max is None:
        raise DataError("the given split has no training events", column="split")
    return train_max - timedelta(days=valid_days)
