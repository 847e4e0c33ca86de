"""Retailrocket views prepared for HGRU4Rec (``retailrocket-hgru4rec``): sessions per visitor.

Folder layout (``../shared/data/retailrocket-hgru4rec``), each file with the columns
``source_index, timestamp`` (Unix ms) ``, visitorid, itemid, session_id``::

    train.parquet        -> split "train"
    test.parquet         -> split "test"  (each test user's last session)
    valid_train.parquet / valid_test.parquet   (a re-split of train; not read by default)

Reading the folder returns train + test with their ``split``; a single file is read without a
``split`` column. ``user_id`` is the ``visitorid``; ``source_index`` is not kept.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer
from sessionrec.data.sources._common import find_file, read_columns, unix_time
from sessionrec.data.sources.base import Source, register

COLUMNS = ("timestamp", "visitorid", "itemid", "session_id")


def read_file(path: Path) -> pl.DataFrame:
    """Canonical events of one split file (no ``split`` column)."""
    df = read_columns(path, COLUMNS)
    return df.select(
        session_id=to_integer(df, "session_id", path),
        user_id=to_integer(df, "visitorid", path),
        item_id=to_integer(df, "itemid", path),
        ts=unix_time(df, "timestamp", path, "ms"),
    )


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events: the folder's train + test (with ``split``), or one split file."""
    path = Path(path)
    if path.is_file():
        return read_file(path).lazy()
    return pl.concat([
        read_file(find_file(path, [f"{split}.*"])).with_columns(split=pl.lit(split))
        for split in ("train", "test")
    ]).lazy()


SOURCE = register(Source(
    name="retailrocket",
    read=read_events,
    description="Retailrocket views with visitor ids, HGRU4Rec-style user split (train = "
                "earlier sessions, test = each test user's last session)",
    user_aware=True,
    session_key="given",
    split="given",
    shared_dir="retailrocket-hgru4rec",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2,
                         "min_user_sessions": 1},
              "split": {"valid": False}},
))
