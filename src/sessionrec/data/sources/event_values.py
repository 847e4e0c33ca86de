"""Parsing the values of a user's own event log (``--source events``): times, ids, order.

Every function takes one file's columns as read (text for CSV, typed for Parquet and NDJSON)
and returns a canonical Series, or raises :class:`DataError` naming the file, the column *as
the user called it* and the 1-based data row of the first bad value.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row, to_float, to_integer
from sessionrec.data.schema import TS_DTYPE
from sessionrec.errors import DataError

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
ZONE = r"(?:[zZ]|[+-]\d{2}:?\d{2})$"
DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"
# Largest plausible epoch values per unit: seconds before ~5138, ms before ~5138, else µs.
UNIT_LIMITS = (("s", 1e11), ("ms", 1e14), ("us", float("inf")))


def guess_unit(values: pl.Series) -> str:
    """"s", "ms" or "us" from the magnitude of Unix times (the largest absolute value)."""
    top = values.cast(pl.Float64).abs().max()
    top = 0.0 if top is None else float(top)  # type: ignore[arg-type]
    return next(unit for unit, limit in UNIT_LIMITS if top < limit)


def epoch_times(df: pl.DataFrame, column: str, path: Path, unit: str) -> pl.Series:
    """Unix times (numbers or numeric text) in ``unit`` ("auto" guesses) as Datetime(us, UTC)."""
    s = df[column]
    numbers = to_float(df, column, path) if not s.dtype.is_integer() else s.cast(pl.Int64)
    if unit == "auto":
        unit = guess_unit(numbers)
    factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    limit = 2**62 / factor
    bad = ~numbers.cast(pl.Float64).is_between(-limit, limit)
    if bad.any():
        row = first_bad_row(df, bad)
        raise DataError(f"timestamp {s[row - 1]!r} is out of range for Unix {unit}",
                        path=str(path), column=column, row=row)
    if numbers.dtype.is_integer():
        micros = numbers * factor
    else:
        micros = (numbers * factor).round(0).cast(pl.Int64)
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(TS_DTYPE)


def iso_times(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """ISO 8601 text as Datetime(us, UTC); every value with a zone, or none (then UTC).

    Accepts ``T`` or a space between date and time, fractional seconds, ``Z`` or ``±hh:mm``
    offsets (different offsets are fine: they are instants). A log where some values carry a
    zone and others do not is ambiguous and raises, naming the first row that differs.
    """
    s = df[column]
    has_zone = s.str.contains(ZONE)
    zoned = bool(has_zone[0])
    mixed = has_zone != zoned
    if mixed.any():
        row = first_bad_row(df, mixed)
        kind = "has no time zone" if zoned else "has a time zone"
        raise DataError(f"timestamp {s[row - 1]!r} {kind} but row 1 ({s[0]!r}) "
                        f"{'has one' if zoned else 'has none'}: mixed time zones",
                        path=str(path), column=column, row=row,
                        hint="write every time with its zone (2024-01-31T12:00:00+01:00)")
    text = s.str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T")
    text = pl.select(pl.when(text.str.contains(DATE_ONLY)).then(text + "T00:00:00")
                     .otherwise(text)).to_series()
    if zoned:
        text = text.str.replace(r"[zZ]$", "+00:00")
        out = text.str.to_datetime(ISO_FORMAT + "%z", strict=False, time_unit="us")
        out = out.dt.convert_time_zone("UTC")
    else:
        out = text.str.to_datetime(ISO_FORMAT, strict=False, time_unit="us")
        out = out.dt.replace_time_zone("UTC")
    bad = out.is_null()
    if bad.any():
        row = first_bad_row(df, bad)
        raise DataError(f"cannot parse timestamp {s[row - 1]!r}", path=str(path), column=column,
                        row=row, hint="use ISO 8601 with a zone (2024-01-31T12:00:00Z) or "
                                      "Unix time (set source.ts_unit)")
    return out.cast(TS_DTYPE)


def timestamps(df: pl.DataFrame, column: str, path: Path, unit: str) -> pl.Series:
    """The ``ts`` column from any of: datetimes, Unix numbers, numeric text, ISO 8601 text."""
    s = df[column]
    if s.null_count():
        raise DataError("timestamp is missing", path=str(path), column=column,
                        row=first_bad_row(df, s.is_null()))
    if isinstance(s.dtype, pl.Datetime):
        out = s.cast(pl.Datetime("us", s.dtype.time_zone))
        out = (out.dt.replace_time_zone("UTC") if s.dtype.time_zone is None
               else out.dt.convert_time_zone("UTC"))
        return out.cast(TS_DTYPE)
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(TS_DTYPE)
    if s.dtype.is_numeric():
        return epoch_times(df, column, path, unit)
    if s.dtype != pl.String:
        raise DataError(f"timestamp has type {s.dtype}", path=str(path), column=column)
    if unit != "auto" or s.str.contains(r"^\s*-?\d+(\.\d*)?\s*$").all():
        return epoch_times(df, column, path, unit)
    return iso_times(df, column, path)


def ids(df: pl.DataFrame, column: str, path: Path, *, nullable: bool = False) -> pl.Series:
    """An id column as Int64 (integer columns) or String (text; see :func:`unify_ids`)."""
    s = df[column]
    if not nullable and s.null_count():
        raise DataError("id is missing", path=str(path), column=column,
                        row=first_bad_row(df, s.is_null()),
                        hint="every event needs this id; drop such rows before preparing")
    if s.dtype.is_integer() or s.dtype == pl.Null:
        return s.cast(pl.Int64)
    if s.dtype in (pl.String, pl.Categorical):
        return s.cast(pl.String)
    raise DataError(f"id column has type {s.dtype}, expected integers or text", path=str(path),
                    column=column)


def unify_ids(s: pl.Series) -> pl.Series:
    """Int64 when every value is a whole number written plainly (no sign or leading zero
    lost), else String: the same id type across all files of a log."""
    if s.dtype != pl.String:
        return s
    as_int = s.cast(pl.Int64, strict=False)
    same = (as_int.cast(pl.String) == s).fill_null(False) | s.is_null()
    return as_int if same.all() else s


def order_values(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """An explicit event order (whole numbers), for logs without timestamps."""
    return to_integer(df, column, path)


def prices(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    return to_float(df, column, path, nullable=True)
