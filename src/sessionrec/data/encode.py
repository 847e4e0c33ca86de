"""Contiguous item and user indices, with the vocabulary kept as a table.

Item indices come from the training split only (an item the model never saw in training cannot
be scored), numbered in order of first appearance (seed 000: "each time a product is seen for
the first time it is assigned the next EmbeddingId"). The vocabulary table maps the shop's
ProductId to the index and back, so serving can translate both ways.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sessionrec.data.schema import METADATA_COLUMNS
from sessionrec.errors import DataError


def first_appearance_index(codes: np.ndarray, size: int) -> np.ndarray:
    """int32 [size]: 0, 1, 2, ... for codes in order of first appearance; -1 for absent ones."""
    seen = pl.Series(codes).unique(maintain_order=True).to_numpy()  # hashing, no sort
    index = np.full(size, -1, dtype=np.int32)
    index[seen] = np.arange(len(seen), dtype=np.int32)
    return index


BLOCK = 1 << 22  # values per block of the look-up


def dense_ids(ids: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """(int64 code of every value, the sorted distinct values): ``distinct[code] == value``.

    The code is the value's rank among the distinct values (as ``rank("dense") - 1``). Integer
    ids spanning a range not much larger than the column are coded with a lookup table in
    two linear passes; other columns are ranked by sorting.
    """
    if ids.dtype.is_integer() and ids.null_count() == 0 and len(ids):
        values = ids.rechunk().to_numpy()
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * len(values) + 1024:
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[values - lo] = True
            rank = np.cumsum(present, dtype=np.int64) - 1
            distinct = pl.Series(ids.name, np.flatnonzero(present) + lo).cast(ids.dtype)
            return lookup(values, rank, offset=lo), distinct
    codes = (ids.rank("dense").to_numpy() - 1).astype(np.int64)
    return codes, ids.unique().sort()


def lookup(keys: np.ndarray, *tables: np.ndarray, offset: int = 0) -> np.ndarray:
    """``tables[-1][... tables[0][keys - offset]]``, block by block: one output array of the
    last table's dtype and no full-length intermediate (at 30M events each is ~240 MB)."""
    out = np.empty(len(keys), dtype=tables[-1].dtype)
    for start in range(0, len(keys), BLOCK):
        values = keys[start:start + BLOCK]
        if offset:
            values = values - offset
        for table in tables:
            values = table[values]
        out[start:start + BLOCK] = values
    return out


def item_vocab(item_ids: pl.Series, train_codes: np.ndarray,
               metadata: pl.DataFrame | None = None) -> tuple[pl.DataFrame, np.ndarray]:
    """The item vocabulary and the code -> index map.

    ``item_ids[c]`` is the shop id of item code ``c``; ``train_codes`` are the codes of the
    training events in canonical order. Returns a table ``item_idx`` (Int32), ``item_id``,
    ``train_events`` (+ brand / category / price from ``metadata``) and the int32 array mapping
    item codes to indices (-1 for items absent from train).
    """
    index = first_appearance_index(train_codes, len(item_ids))
    present = np.flatnonzero(index >= 0)
    present = present[np.argsort(index[present])]
    counts = np.bincount(train_codes, minlength=len(item_ids))
    vocab = pl.DataFrame({
        "item_idx": pl.Series(index[present], dtype=pl.Int32),
        "item_id": item_ids.gather(present),
        "train_events": pl.Series(counts[present], dtype=pl.Int64),
    })
    if metadata is not None and len(metadata.columns) > 1:
        metadata = metadata.unique("item_id", keep="first", maintain_order=True)
        vocab = vocab.join(metadata, on="item_id", how="left", maintain_order="left")
    return vocab, index


def item_metadata_from_events(events: pl.DataFrame) -> pl.DataFrame | None:
    """First non-null brand / category / price per item from event columns, if any exist."""
    cols = [c for c in METADATA_COLUMNS if c in events.columns]
    if not cols:
        return None
    return events.group_by("item_id", maintain_order=True).agg(
        pl.col(c).drop_nulls().first() for c in cols)


def user_vocab(user_ids: pl.Series, codes: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """User vocabulary by first appearance of the user codes ``codes`` (events in order).

    ``user_ids[c]`` is the id of user code ``c``. Returns the table ``user_idx`` (Int32),
    ``user_id`` and the int32 array mapping user codes to indices (-1 for absent users).
    """
    index = first_appearance_index(codes, len(user_ids))
    present = np.flatnonzero(index >= 0)
    present = present[np.argsort(index[present])]
    table = pl.DataFrame({"user_idx": pl.Series(index[present], dtype=pl.Int32),
                          "user_id": user_ids.gather(present)})
    return table, index


def check_encoded(item_idx: np.ndarray) -> None:
    """Every kept event must have an item index (a bug in the filter otherwise)."""
    missing = int((item_idx < 0).sum())
    if missing:
        raise DataError(f"{missing} events have items outside the training vocabulary",
                        column="item_id", hint="this is a bug in the split/filter steps")
