"""DIGINETICA (CIKM Cup 2016) product views, with item categories; purchases apart.

Folder layout (``../shared/data/diginetica``; the full ``train-item-views`` is used if present,
else SR-GNN's ``sample_train-item-views``; Parquet, or the original ';'-separated CSV with ``NA``
for a missing user)::

    [sample_]train-item-views.{parquet,csv,csv.gz}   session_id; user_id; item_id;
                                                     timeframe; eventdate
    product-categories.{parquet,csv}                 itemId; categoryId     (optional)
    train-purchases.{parquet,csv}                    sessionId; userId; timeframe; eventdate;
                                                     ordernumber; itemId    (read_purchases)

An event's time is its ``eventdate`` (midnight UTC) plus ``timeframe`` milliseconds since the
session started; the file order is not chronological. ``category`` is the ``categoryId`` as text
(a flat leaf id). Views have ``event_type`` ``"view"``; :func:`read_purchases` gives the
purchases (``"purchase"``) in the same form, for simulations. ``ordernumber`` is not kept.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer, to_timestamp
from sessionrec.data.sources._common import find_file, join_items, read_columns
from sessionrec.data.sources.base import Source, register

VIEW_FILES = ("train-item-views.*", "sample_train-item-views.*")
PURCHASE_FILES = ("train-purchases.*",)
CATEGORY_FILES = ("product-categories.*",)
VIEW_COLUMNS = ("session_id", "user_id", "item_id", "timeframe", "eventdate")
PURCHASE_COLUMNS = ("sessionId", "userId", "itemId", "timeframe", "eventdate")


def _locate(path: Path, patterns: tuple[str, ...]) -> tuple[Path, Path]:
    """(dataset folder, file to read) for a folder or a file ``path``."""
    path = Path(path)
    if path.is_file():
        return path.parent, path
    return path, find_file(path, patterns)


def _events(path: Path, columns: tuple[str, ...], event_type: str) -> pl.DataFrame:
    session, user, item = columns[:3]
    df = read_columns(path, columns)
    if df.schema[user] == pl.String:
        df = df.with_columns(pl.col(user).replace("NA", None))  # the CSV's missing user
    day = to_timestamp(df, "eventdate", path)
    offset = to_integer(df, "timeframe", path)
    return df.select(
        session_id=to_integer(df, session, path),
        user_id=to_integer(df, user, path, nullable=True),
        item_id=to_integer(df, item, path),
        ts=pl.lit(day) + pl.duration(milliseconds=pl.lit(offset)),
        event_type=pl.lit(event_type),
    )


def _with_categories(events: pl.DataFrame, folder: Path) -> pl.DataFrame:
    """``events`` plus ``category`` from ``product-categories`` in ``folder``, if it is there."""
    if not any(folder.glob(CATEGORY_FILES[0])):
        return events
    path = find_file(folder, CATEGORY_FILES)
    df = read_columns(path, ("itemId", "categoryId"))
    items = df.select(
        item_id=to_integer(df, "itemId", path),
        category=to_integer(df, "categoryId", path, nullable=True).cast(pl.String),
    )
    return join_items(events, items, path, "itemId")


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical view events from the folder or a views file (categories from beside it)."""
    folder, views = _locate(path, VIEW_FILES)
    return _with_categories(_events(views, VIEW_COLUMNS, "view"), folder).lazy()


def read_purchases(path: Path) -> pl.LazyFrame:
    """Canonical purchase events (``event_type`` "purchase", with ``category``).

    ``path`` is the dataset folder or a ``train-purchases`` file.
    """
    folder, purchases = _locate(path, PURCHASE_FILES)
    return _with_categories(_events(purchases, PURCHASE_COLUMNS, "purchase"), folder).lazy()


SOURCE = register(Source(
    name="diginetica",
    read=read_events,
    description="DIGINETICA / CIKM Cup 2016 product views (SR-GNN sample or full) with leaf "
                "categories; purchases via diginetica.read_purchases",
    user_aware=False,
    session_key="given",
    split="time",
    shared_dir="diginetica",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2},
              "split": {"test_days": 7.0, "valid_days": 7.0}},
))
