"""The canonical event schema every source adapter produces.

One row is one event (a product view, unless ``event_type`` says otherwise):

=============================  =========================  ==========================================
column                         dtype                      meaning
=============================  =========================  ==========================================
``session_id``                 Int64 or String            the session the event belongs to
``user_id``                    Int64 or String, nullable  the (logged-in) user; null if anonymous
``item_id``                    Int64 or String            the shop's product id
``ts``                         Datetime(us, UTC)          when the event happened
``event_type`` (optional)      String                     view, cart, purchase, ... (source words)
``brand`` (optional)           String                     item metadata
``category`` (optional)        String                     item metadata (product type)
``price`` (optional)           Float64                    item metadata
``user_agent`` (optional)      String                     raw User-Agent header, for bot removal
``last_logged_in_user_id``     same as ``user_id``        user last seen on the device (Galaxus)
``split`` (optional)           String                     train / valid / test, when a source ships
                                                          its own split
=============================  =========================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from sessionrec.errors import DataError

TS_DTYPE = pl.Datetime("us", "UTC")

REQUIRED_COLUMNS: tuple[str, ...] = ("session_id", "user_id", "item_id", "ts")
OPTIONAL_COLUMNS: dict[str, pl.DataType] = {
    "event_type": pl.String(),
    "brand": pl.String(),
    "category": pl.String(),
    "price": pl.Float64(),
    "user_agent": pl.String(),
    "last_logged_in_user_id": pl.Int64(),  # or String, like user_id
    "split": pl.String(),
}
ID_DTYPES = (pl.Int64, pl.String)
METADATA_COLUMNS: tuple[str, ...] = ("brand", "category", "price")
SPLITS: tuple[str, ...] = ("train", "valid", "test")


def canonical_order(columns: list[str]) -> list[str]:
    """Required columns first, then the optional ones present, in schema order."""
    ordered = [c for c in REQUIRED_COLUMNS if c in columns]
    ordered += [c for c in OPTIONAL_COLUMNS if c in columns]
    return ordered


def validate_schema(schema: Mapping[str, pl.DataType], source: str) -> None:
    """Raise :class:`DataError` unless ``schema`` is a canonical event schema.

    ``source`` names where the frame came from (an adapter and file) for the message.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in schema]
    if missing:
        raise DataError(
            f"canonical events from {source} lack column(s) {missing}; have {list(schema)}"
        )
    unknown = [c for c in schema if c not in REQUIRED_COLUMNS and c not in OPTIONAL_COLUMNS]
    if unknown:
        raise DataError(f"canonical events from {source} have unexpected column(s) {unknown}")
    for col in ("session_id", "user_id", "item_id", "last_logged_in_user_id"):
        if col in schema and not isinstance(schema[col], ID_DTYPES):
            raise DataError(
                f"canonical column {col!r} from {source} has dtype {schema[col]}, "
                "expected Int64 or String"
            )
    if schema["ts"] != TS_DTYPE:
        raise DataError(f"canonical column 'ts' from {source} has dtype {schema['ts']}, "
                        f"expected {TS_DTYPE}")
    for col, dtype in OPTIONAL_COLUMNS.items():
        if col in schema and col not in ("last_logged_in_user_id",) and schema[col] != dtype:
            raise DataError(
                f"canonical column {col!r} from {source} has dtype {schema[col]}, expected {dtype}"
            )
