"""OTTO session dataset (otto.de): clicks, carts and orders per session, 20-session sample.

``path`` is the folder ``../shared/data/otto-sample`` (``train_sample.parquet``) or one file with
the flattened columns ``session, aid, ts`` (Unix ms) ``, type`` (one row per event; the
original JSONL nests the events per session and is not read here).

``type`` becomes ``event_type``: clicks -> view, carts -> cart, orders -> purchase. There are
no user ids: ``user_id`` is null.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer
from sessionrec.data.sources._common import find_file, map_values, read_columns, unix_time
from sessionrec.data.sources.base import Source, register

COLUMNS = ("session", "aid", "ts", "type")
EVENT_TYPES = {"clicks": "view", "carts": "cart", "orders": "purchase"}


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events from the folder or one flattened OTTO file."""
    path = Path(path)
    if not path.is_file():
        path = find_file(path, ["train_sample.*", "train.*"])
    df = read_columns(path, COLUMNS)
    return df.select(
        session_id=to_integer(df, "session", path),
        user_id=pl.lit(None, pl.Int64),
        item_id=to_integer(df, "aid", path),
        ts=unix_time(df, "ts", path, "ms"),
        event_type=map_values(df, "type", path, EVENT_TYPES),
    ).lazy()


SOURCE = register(Source(
    name="otto",
    read=read_events,
    description="OTTO (otto.de) sessions with clicks, carts and orders; 20-session sample for "
                "smoke tests; no users",
    user_aware=False,
    session_key="given",
    split="time",
    shared_dir="otto-sample",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2},
              "split": {"test_days": 3.0, "valid": False}},
))
