"""The canonical exposure frame and its checks.

One row per exposure (an item shown to a user), time-ordered per user:

``user_id`` (String), ``item_id`` (Int64), ``ts`` (Datetime(us, UTC)) and one Int8 0/1 column
per behaviour label in :data:`LABELS`. Item side features live in a separate item table with
``item_id`` and the columns of :data:`ITEM_FEATURES` (missing values allowed: coded 0).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row
from sessionrec.errors import DataError

# click: the user opened the item; like / follow (the item's author) / comment: stronger signals.
LABELS = ("click", "like", "follow", "comment")
EXPOSURE_COLUMNS = ("user_id", "item_id", "ts", *LABELS)
# Categorical side features of a KuaiRand item (dense codes, 0 = unknown), used as item
# embeddings and by the temporal graph's similarity (models.neural.graph_lstm). Another source
# declares its own five (trivago: exposures.trivago.FEATURES); items.parquet holds them.
ITEM_FEATURES = ("author", "tag", "kind", "music", "duration")


def binary_label(df: pl.DataFrame, column: str, path: Path | str) -> pl.Series:
    """``column`` as Int8 0/1; a missing or other value raises naming file, column and row.

    ``df`` is the frame as read from ``path`` (rows in file order), so the row is the file's
    1-based data row.
    """
    s = df[column]
    if not (s.dtype.is_integer() or s.dtype == pl.Boolean or s.dtype == pl.Null):
        raise DataError(f"label column has type {s.dtype}, expected 0/1 integers",
                        path=str(path), column=column)
    if s.null_count():
        raise DataError("label is missing", path=str(path), column=column,
                        row=first_bad_row(df, s.is_null()),
                        hint="every exposure needs all its labels; fix or drop the row upstream")
    values = s.cast(pl.Int64)
    bad = ~values.is_in([0, 1])
    if bad.any():
        row = first_bad_row(df, bad)
        raise DataError(f"label {values[row - 1]} is not 0 or 1", path=str(path), column=column,
                        row=row)
    return values.cast(pl.Int8)


def check_exposures(df: pl.DataFrame, where: str) -> None:
    """Raise :class:`DataError` if ``df`` lacks a canonical column."""
    missing = [c for c in EXPOSURE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{where}: exposure frame lacks columns {missing}; expected "
                        f"{list(EXPOSURE_COLUMNS)}")
