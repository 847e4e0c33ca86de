"""Galaxus raw-log format (seed 000, section 3.2): product-detail-page views as many shards.

Layout read here (what ``sessionrec synth`` writes)::

    RAW_DIR/
      events/part-00000.parquet   (or .csv / .csv.gz), one shard per (approximate) day
      items.parquet               optional: ProductId, Brand, ProductType, Price

Event columns: ``ProductId``, ``LastLoggedInUserId``, ``UserId``, ``SessionId``, ``UserAgent``,
``Timestamp``. ``UserId`` is null when the visitor was not logged in; ``LastLoggedInUserId`` is the
user last seen on the device (the clean step fills the user from it). ``Timestamp`` is a
datetime, an ISO 8601 string, or integer Unix milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import check_utf8, first_bad_row, list_files, scan_table, to_timestamp
from sessionrec.data.schema import TS_DTYPE
from sessionrec.data.sources.base import Source, register
from sessionrec.errors import DataError

EVENT_COLUMNS = ("ProductId", "LastLoggedInUserId", "UserId", "SessionId", "UserAgent",
                 "Timestamp")
ITEM_COLUMNS = ("ProductId", "Brand", "ProductType", "Price")
RENAME = {
    "ProductId": "item_id",
    "LastLoggedInUserId": "last_logged_in_user_id",
    "UserId": "user_id",
    "SessionId": "session_id",
    "UserAgent": "user_agent",
}


def _shard_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir() and (path / "events").is_dir():
        path = path / "events"
    return [p for p in list_files(path) if p.name != "items.parquet"]


def _id_expr(name: str, dtype: pl.DataType, path: Path) -> pl.Expr:
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    if dtype == pl.String or dtype == pl.Null:
        return pl.col(name).cast(pl.String) if dtype == pl.String else pl.col(name).cast(pl.Int64)
    raise DataError(f"id column has type {dtype}, expected integers or strings", path=str(path),
                    column=name)


def _scan_shard(path: Path) -> pl.LazyFrame:
    lf = scan_table(path, columns=EVENT_COLUMNS)
    schema = lf.collect_schema()
    exprs = [_id_expr(src, schema[src], path).alias(dst) for src, dst in RENAME.items()
             if src != "UserAgent"]
    if schema["UserAgent"] not in (pl.String, pl.Null, pl.Categorical):
        raise DataError(f"user agent has type {schema['UserAgent']}, expected text",
                        path=str(path), column="UserAgent")
    exprs.append(pl.col("UserAgent").cast(pl.String).alias("user_agent"))
    ts_type = schema["Timestamp"]
    if isinstance(ts_type, pl.Datetime):
        ts = pl.col("Timestamp").cast(pl.Datetime("us", ts_type.time_zone))
        ts = (ts.dt.replace_time_zone("UTC") if ts_type.time_zone is None
              else ts.dt.convert_time_zone("UTC"))
        exprs.append(ts.cast(TS_DTYPE).alias("ts"))
        checked = lf
    else:
        # Text or integer timestamps: parse eagerly per shard so a bad row can be named.
        df = lf.collect()
        check_utf8(df, "UserAgent", path)
        unit = "ms" if ts_type.is_integer() else None
        df = df.with_columns(to_timestamp(df, "Timestamp", path, unit=unit).alias("Timestamp"))
        checked = df.lazy()
        exprs.append(pl.col("Timestamp").alias("ts"))
    return checked.select(exprs)


def _check_not_null(lf: pl.LazyFrame, files: list[Path]) -> None:
    """ProductId, SessionId and Timestamp may never be missing; find the file and row if so."""
    cols = ["item_id", "session_id", "ts"]
    counts = lf.select(pl.col(cols).null_count()).collect()
    if not any(counts.row(0)):
        return
    column = cols[next(i for i, n in enumerate(counts.row(0)) if n)]
    for path in files:
        df = _scan_shard(path).select(column).collect()
        mask = df[column].is_null()
        if mask.any():
            src = {v: k for k, v in RENAME.items()}.get(column, "Timestamp")
            raise DataError("value is missing", path=str(path), column=src,
                            row=first_bad_row(df, mask),
                            hint="every view needs a product, a session and a time")


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events from Galaxus-format shards at ``path`` (directory or one file)."""
    files = _shard_files(path)
    frames = [_scan_shard(p) for p in files]
    schemas = {str(p): f.collect_schema() for p, f in zip(files, frames, strict=True)}
    first = next(iter(schemas.values()))
    for name, schema in schemas.items():
        if schema != first:
            diff = [c for c in schema if schema[c] != first[c]]
            raise DataError(f"shard's column types differ from the first shard's ({diff})",
                            path=name, column=diff[0] if diff else None)
    lf = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    _check_not_null(lf, files)
    return lf


def read_items(path: Path) -> pl.LazyFrame | None:
    """Item metadata from ``items.parquet`` beside the shards, or None if there is none."""
    path = Path(path)
    candidates = [path / "items.parquet", path.parent / "items.parquet"] if path.is_dir() else [
        path.parent / "items.parquet", path.parent.parent / "items.parquet"]
    items = next((p for p in candidates if p.is_file()), None)
    if items is None:
        return None
    lf = scan_table(items, columns=("ProductId",))
    schema = lf.collect_schema()
    exprs = [pl.col("ProductId").cast(pl.Int64 if schema["ProductId"].is_integer()
                                      else pl.String).alias("item_id")]
    for src, dst in (("Brand", "brand"), ("ProductType", "category")):
        if src in schema:
            exprs.append(pl.col(src).cast(pl.String).alias(dst))
    if "Price" in schema:
        if not schema["Price"].is_numeric():
            raise DataError(f"price has type {schema['Price']}, expected a number",
                            path=str(items), column="Price")
        exprs.append(pl.col("Price").cast(pl.Float64).alias("price"))
    return lf.select(exprs)


SOURCE = register(Source(
    name="galaxus",
    read=read_events,
    read_items=read_items,
    description="Galaxus raw-log shards (seed 000): ProductId, LastLoggedInUserId, UserId, "
                "SessionId, UserAgent, Timestamp; what `sessionrec synth` writes",
    user_aware=True,
    session_key="given",
    split="last_session",
))
