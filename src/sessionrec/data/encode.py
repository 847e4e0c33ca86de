"""Contiguous item and user indices, with the vocabulary kept as a table.

Item indices come from the training split only (an item the model never saw in training cannot
be scored), numbered in order of first appearance (seed 000: "each time a product is seen for
the first time it is assigned the next EmbeddingId"). The vocabulary table maps the shop's
ProductId to the index and back, so serving can translate both ways.
"""

from __future__ import annotations

import polars as pl

from sessionrec.data.schema import METADATA_COLUMNS
from sessionrec.errors import DataError


def item_vocab(train: pl.DataFrame, metadata: pl.DataFrame | None = None) -> pl.DataFrame:
    """Vocabulary ``item_idx`` (Int32, 0..n-1), ``item_id``, ``train_events`` (+ metadata).

    ``train`` is in canonical row order; ``metadata`` (optional) has ``item_id`` and any of
    brand / category / price, one row per item.
    """
    vocab = (
        train.group_by("item_id", maintain_order=True)
        .agg(train_events=pl.len())
        .with_row_index("item_idx")
        .with_columns(pl.col("item_idx").cast(pl.Int32), pl.col("train_events").cast(pl.Int64))
        .select("item_idx", "item_id", "train_events")
    )
    if metadata is not None and len(metadata.columns) > 1:
        vocab = vocab.join(metadata, on="item_id", how="left", maintain_order="left")
    return vocab


def item_metadata_from_events(events: pl.DataFrame) -> pl.DataFrame | None:
    """First non-null brand / category / price per item from event columns, if any exist."""
    cols = [c for c in METADATA_COLUMNS if c in events.columns]
    if not cols:
        return None
    return events.group_by("item_id").agg(pl.col(c).drop_nulls().first() for c in cols)


def user_vocab(df: pl.DataFrame) -> pl.DataFrame:
    """``user_idx`` (Int32) for every non-null user, in order of first appearance."""
    return (
        df.select("user_id").drop_nulls().unique(maintain_order=True)
        .with_row_index("user_idx").with_columns(pl.col("user_idx").cast(pl.Int32))
        .select("user_idx", "user_id")
    )


def encode(df: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``item_idx`` (and ``user_idx``) columns; every item must be in the vocabulary."""
    out = df.join(items.select("item_id", "item_idx"), on="item_id", how="left",
                  maintain_order="left")
    missing = out["item_idx"].null_count()
    if missing:
        raise DataError(f"{missing} events have items outside the training vocabulary",
                        column="item_id", hint="this is a bug in the split/filter steps")
    if users is not None:
        out = out.join(users, on="user_id", how="left", maintain_order="left")
    return out
