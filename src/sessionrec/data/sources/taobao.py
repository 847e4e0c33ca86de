"""Taobao UserBehavior (Alibaba Tianchi): page views, carts, favourites and buys per user.

Folder ``../shared/data/taobao`` with ``UserBehavior.parquet`` or ``UserBehavior.csv[.gz]``
(the original CSV has no header; a header line is recognised too). Columns: ``user_id, item_id,
category_id, behavior_type, timestamp`` (Unix seconds).

``behavior_type`` becomes ``event_type``: pv -> view, cart -> cart, fav -> fav, buy -> purchase.
``category`` is the ``category_id`` as text. The data has no session ids, so ``session_id`` is
the ``user_id``: the pipeline cuts each user's events into sessions by an inactivity gap
(``session_key="gap"``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer
from sessionrec.data.sources._common import find_file, map_values, read_columns, unix_time
from sessionrec.data.sources.base import Source, register

COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
EVENT_TYPES = {"pv": "view", "cart": "cart", "fav": "fav", "buy": "purchase"}


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events from the folder or a ``UserBehavior`` file."""
    path = Path(path)
    if not path.is_file():
        path = find_file(path, ["UserBehavior.*"])
    df = read_columns(path, COLUMNS, names=COLUMNS)
    user = to_integer(df, "user_id", path)
    return df.select(
        session_id=user,
        user_id=user,
        item_id=to_integer(df, "item_id", path),
        ts=unix_time(df, "timestamp", path, "s"),
        event_type=map_values(df, "behavior_type", path, EVENT_TYPES),
        category=to_integer(df, "category_id", path, nullable=True).cast(pl.String),
    ).lazy()


SOURCE = register(Source(
    name="taobao",
    read=read_events,
    description="Taobao UserBehavior (Tianchi): views, carts, favourites, buys of logged-in "
                "users with item categories; sessions cut by a time gap",
    user_aware=True,
    session_key="gap",
    split="last_session",
    shared_dir="taobao",
    defaults={"filter": {"min_item_support": 2, "min_session_length": 2,
                         "min_user_sessions": 3}},
))
