"""Amazon review sequences as preprocessed for S3-Rec (``amazon-s3rec``): one sequence per user.

``path`` is a ``<Name>_sequences.parquet`` file (Name = Beauty, Sports_and_Outdoors,
Toys_and_Games) or the folder ``../shared/data/amazon-s3rec``, which reads Beauty. Columns:
``user_id, position`` (0-based, in review-time order) ``, item_id``. If
``<Name>_item_attributes.parquet`` (``item_id, attr_position, attribute_id``) lies beside it,
the attribute at ``attr_position`` 0 becomes ``brand`` (as text). The attributes are anonymised:
position 0 is the brand when the item has one, else its first category, and the two cannot be
told apart.

**Synthetic timestamps.** The data has no times, only each user's order. ``ts`` is set to
2000-01-01 00:00 UTC plus ``position`` days, so the order within a user is kept and nothing else
about time is meaningful (every sequence starts on the same day). Each user's sequence is one
session (``session_id`` = ``user_id``), so the data is not user-aware. The usual S3-Rec/SASRec
protocol (hold out each user's last item) is not a session split: the default ``split="time"``
only runs, and marks as test the sessions that end in the last days, i.e. the longest sequences;
evaluate with a leave-one-out protocol outside this pipeline for comparable numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row, to_integer
from sessionrec.data.sources._common import join_items, read_columns
from sessionrec.data.sources.base import Source, register
from sessionrec.errors import DataError

DEFAULT_NAME = "Beauty"
SEQUENCE_SUFFIX = "_sequences.parquet"
ATTRIBUTE_SUFFIX = "_item_attributes.parquet"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events (synthetic daily timestamps, ``brand`` where known) of one dataset."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{DEFAULT_NAME}{SEQUENCE_SUFFIX}"
    df = read_columns(path, ("user_id", "position", "item_id"))
    user = to_integer(df, "user_id", path)
    events = df.select(
        session_id=user,
        user_id=user,
        item_id=to_integer(df, "item_id", path),
        ts=pl.lit(EPOCH) + pl.duration(days=pl.lit(to_integer(df, "position", path))),
    )
    attributes = path.with_name(path.name.removesuffix(SEQUENCE_SUFFIX) + ATTRIBUTE_SUFFIX)
    if path.name.endswith(SEQUENCE_SUFFIX) and attributes.is_file():
        events = join_items(events, _brands(attributes), attributes, "item_id")
    return events.lazy()


def _brands(path: Path) -> pl.DataFrame:
    """``item_id, brand``: each item's attribute at position 0, as text."""
    df = read_columns(path, ("item_id", "attr_position", "attribute_id"))
    item = to_integer(df, "item_id", path)
    first = to_integer(df, "attr_position", path) == 0
    repeated = first & pl.select(pl.when(first).then(item).is_duplicated()).to_series()
    if repeated.any():  # checked here so that the row is the file's
        raise DataError("item has several attributes at position 0", path=str(path),
                        column="attr_position", row=first_bad_row(df, repeated))
    return df.select(
        item_id=item,
        brand=to_integer(df, "attribute_id", path).cast(pl.String),
    ).filter(first)


SOURCE = register(Source(
    name="amazon",
    read=read_events,
    description="Amazon review sequences (S3-Rec Beauty / Sports / Toys), one session per user, "
                "synthetic daily timestamps, anonymised brand ids",
    user_aware=False,
    session_key="given",
    split="time",
    shared_dir="amazon-s3rec",
))
