"""REES46 "eCommerce behavior data from multi category store" (Open CDP).

``path`` is one monthly file (``2019-Oct.csv``, or ``2019-Oct_head.parquet`` in
``../shared/data/rees46``) or a folder, whose data files are all read, in name order (one per
month). Columns: ``event_time`` (``YYYY-MM-DD HH:MM:SS UTC`` in the CSV), ``event_type`` (view,
cart, purchase), ``product_id, category_id, category_code`` (dotted path, often missing),
``brand, price, user_id, user_session`` (a UUID).

``category`` is the ``category_code`` where present, else the ``category_id`` as text.
``session_id`` is the ``user_session`` text. Prices are kept as given (including 0.0), and so is
the rare session that occurs with two users: cleaning is the pipeline's job.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import list_files, to_float, to_integer, to_timestamp
from sessionrec.data.sources._common import read_columns, to_text
from sessionrec.data.sources.base import Source, register

COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code", "brand",
           "price", "user_id", "user_session")


def read_file(path: Path) -> pl.DataFrame:
    """Canonical events of one REES46 file."""
    df = read_columns(path, COLUMNS)
    if df.schema["event_time"] == pl.String:
        df = df.with_columns(pl.col("event_time").str.strip_suffix(" UTC"))
    category_id = to_integer(df, "category_id", path, nullable=True).cast(pl.String)
    return df.select(
        session_id=to_text(df, "user_session", path),
        user_id=to_integer(df, "user_id", path),
        item_id=to_integer(df, "product_id", path),
        ts=to_timestamp(df, "event_time", path),
        event_type=to_text(df, "event_type", path),
        brand=to_text(df, "brand", path, nullable=True),
        category=pl.coalesce(to_text(df, "category_code", path, nullable=True), category_id),
        price=to_float(df, "price", path, nullable=True),
    )


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events of one file or of every data file in a folder."""
    return pl.concat([read_file(p) for p in list_files(Path(path))]).lazy()


SOURCE = register(Source(
    name="rees46",
    read=read_events,
    description="REES46 multi-category store events (views, carts, purchases) with brand, "
                "category and price; given user sessions",
    user_aware=True,
    session_key="given",
    split="time",
    shared_dir="rees46",
    defaults={"clean": {"user_aware": False},
              "filter": {"min_item_support": 2, "min_session_length": 2},
              "split": {"test_days": 0.02, "valid_days": 0.02}},
))
