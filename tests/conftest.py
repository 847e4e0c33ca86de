"""Shared test fixtures: tiny canonical event frames built from readable tuples."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest
import torch

from sessionrec.data.schema import TS_DTYPE

# The test models are tiny: one thread avoids OpenMP spin-waits that make them crawl when the
# CI machine's cores are shared with other processes.
torch.set_num_threads(1)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
COLUMNS = ("session_id", "user_id", "item_id", "minute")


def build_events(rows: list[tuple], columns: tuple[str, ...] = COLUMNS) -> pl.DataFrame:
    """Canonical events from tuples; ``minute`` is minutes after 2024-03-01 08:00 UTC."""
    df = pl.DataFrame(rows, schema=list(columns), orient="row")
    df = df.with_columns(ts=(pl.lit(T0) + pl.duration(minutes=pl.col("minute"))).cast(TS_DTYPE))
    df = df.drop("minute")
    for col in ("session_id", "user_id", "item_id"):
        if col in df.columns:
            df = df.with_columns(pl.col(col).cast(pl.Int64))
    return df


@pytest.fixture
def make_events() -> Callable[..., pl.DataFrame]:
    """``make_events(rows, columns=...)``: see :func:`build_events`."""
    return build_events


@pytest.fixture
def t0() -> datetime:
    return T0
