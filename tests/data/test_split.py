from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from sessionrec.data.split import label_by_time, label_given, label_last_session, time_cutoffs
from sessionrec.errors import DataError


def labels(df: pl.DataFrame) -> list[tuple[int, str]]:
    return df.select("session_id", "split").unique(maintain_order=True).rows()


def test_last_session_out(make_events):
    # user 1: sessions 0,1,2; user 2: sessions 3,4; user 3: session 5 only
    df = make_events([(0, 1, 1, 0), (1, 1, 1, 60), (2, 1, 1, 120), (3, 2, 1, 0), (4, 2, 1, 90),
                      (5, 3, 1, 0)])
    out = label_last_session(df, valid=True)
    assert labels(out) == [(0, "train"), (1, "valid"), (2, "test"), (3, "train"), (4, "test"),
                           (5, "train")]
    out = label_last_session(df, valid=False)
    assert labels(out)[1] == (1, "train")


def test_time_split_uses_session_end(make_events, t0):
    # session 0 ends at 08:30, session 1 starts 08:50 and ends 09:10, session 2 at 09:20
    df = make_events([(0, None, 1, 0), (0, None, 2, 30), (1, None, 1, 50), (1, None, 2, 70),
                      (2, None, 1, 80)])
    test_start, valid_start = t0 + timedelta(minutes=60), t0 + timedelta(minutes=25)
    out = label_by_time(df, test_start=test_start, valid_start=valid_start)
    assert labels(out) == [(0, "valid"), (1, "test"), (2, "test")]
    out = label_by_time(df, test_start=test_start, valid_start=None)
    assert labels(out) == [(0, "train"), (1, "test"), (2, "test")]


def test_time_cutoffs(t0):
    test_start, valid_start = time_cutoffs(t0, 1.0, 2.0, True)
    assert test_start == t0 - timedelta(days=1)
    assert valid_start == t0 - timedelta(days=3)
    assert time_cutoffs(t0, 1.0, 2.0, False)[1] is None


def test_given_split_rejects_unknown_labels(make_events):
    df = make_events([(0, None, 1, 0)]).with_columns(split=pl.lit("holdout"))
    with pytest.raises(DataError, match="holdout"):
        label_given(df, valid_start=None)
