"""YOOCHOOSE clicks (RecSys Challenge 2015), as the session-rec ``yoochoose-100k`` split.

The folder (``../shared/data/yoochoose-100k``) holds prepared tab-separated files with a header
``SessionId  ItemId  Time`` (``Time`` = Unix seconds with a fraction)::

    yoochoose-clicks-100k_train_full.tsv.gz   -> split "train"
    yoochoose-clicks-100k_test.tsv.gz         -> split "test"   (the last day)
    yoochoose-clicks-100k_train_tr / _train_valid   (a re-split of train_full; not read by default)

Reading the folder returns train_full + test with their ``split``. A single file is read without
a ``split`` column; it may be a prepared file (recognised by its ``SessionId`` header) or the
original ``yoochoose-clicks.dat``: comma-separated, no header, ``SessionId, Timestamp (ISO 8601,
UTC), ItemId, Category``. Its ``Category`` is kept as text in ``category`` as the challenge
defines it: ``0`` unknown, ``S`` special offer, ``1``–``12`` a category, a long number a brand.
There are no users: ``user_id`` is null.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer, to_timestamp
from sessionrec.data.sources._common import (
    find_file,
    is_parquet,
    read_columns,
    sniff,
    to_text,
    unix_time,
)
from sessionrec.data.sources.base import Source, register

PREPARED_COLUMNS = ("SessionId", "ItemId", "Time")
RAW_COLUMNS = ("SessionId", "Timestamp", "ItemId", "Category")


def read_clicks(path: Path) -> pl.DataFrame:
    """Canonical events of one clicks file, prepared TSV or raw ``.dat`` (no ``split``)."""
    path = Path(path)
    raw = not is_parquet(path) and sniff(path)[1][0].isdigit()  # the .dat has no header
    if raw:
        df = read_columns(path, RAW_COLUMNS, names=RAW_COLUMNS)
        ts = to_timestamp(df, "Timestamp", path)
        extra = {"category": to_text(df, "Category", path, nullable=True)}
    else:
        df = read_columns(path, PREPARED_COLUMNS)
        ts = unix_time(df, "Time", path, "s")
        extra = {}
    return df.select(
        session_id=to_integer(df, "SessionId", path),
        user_id=pl.lit(None, pl.Int64),
        item_id=to_integer(df, "ItemId", path),
        ts=ts,
        **extra,
    )


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events: the folder's train_full + test (with ``split``), or one clicks file."""
    path = Path(path)
    if path.is_file():
        return read_clicks(path).lazy()
    train = find_file(path, ["*train_full.*"])
    test = find_file(path, ["*_test.*"])
    return pl.concat([
        read_clicks(train).with_columns(split=pl.lit("train")),
        read_clicks(test).with_columns(split=pl.lit("test")),
    ]).lazy()


SOURCE = register(Source(
    name="yoochoose",
    read=read_events,
    description="YOOCHOOSE / RecSys Challenge 2015 clicks: session-rec 100k train_full/test "
                "split (TSV) or the raw yoochoose-clicks.dat; no users",
    user_aware=False,
    session_key="given",
    split="given",
    shared_dir="yoochoose-100k",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2},
              "split": {"valid": False}},
))
