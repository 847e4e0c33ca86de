"""Helpers shared by the public-dataset adapters: find files, read columns, parse values.

Every reader collects the columns it needs from one file and parses them with the helpers of
:mod:`sessionrec.data.io`, so a bad value is reported with its file, column and 1-based data row
(the header line not counted). CSV/TSV files are read as text and parsed afterwards.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from sessionrec.data.io import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    check_utf8,
    first_bad_row,
    scan_table,
    scan_text,
    to_float,
    to_timestamp,
)
from sessionrec.errors import DataError

SEPARATORS = ("\t", ";", ",")


def find_file(folder: Path, patterns: Sequence[str]) -> Path:
    """The data file in ``folder`` matching the first of ``patterns`` (globs) that matches any.

    Parquet wins over CSV when both match (datasets ship both); several matches of one kind
    are ambiguous and raise :class:`DataError`.
    """
    if not folder.is_dir():
        raise DataError("input does not exist", path=str(folder))
    for pattern in patterns:
        found = sorted(p for p in folder.glob(pattern)
                       if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES))
        parquet = [p for p in found if p.name.lower().endswith(PARQUET_SUFFIXES)]
        found = parquet or found
        if len(found) > 1:
            raise DataError(f"several files match {pattern!r}: {[p.name for p in found]}",
                            path=str(folder), hint="pass the file to read instead of the folder")
        if found:
            return found[0]
    raise DataError(f"no data file matching {list(patterns)}", path=str(folder),
                    hint="pass the dataset folder or one of its files")


def sniff(path: Path) -> tuple[str, list[str]]:
    """The separator of a CSV/TSV file (tab, ';' or ',') and the fields of its first line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            line = fh.readline(65536).decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError as err:
        raise DataError(f"cannot read file: {err}", path=str(path)) from err
    separator = next((s for s in SEPARATORS if s in line), ",")
    return separator, [f.strip().strip('"') for f in line.split(separator)]


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def read_columns(
    path: Path,
    columns: Sequence[str],
    *,
    names: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Collect ``columns`` of one Parquet or CSV/TSV file (CSV values as text).

    ``names`` are the column names to use for a CSV file without a header line, recognised by a
    number as its first field (numeric ids come first in every such format). Raises
    :class:`DataError` for a missing column, an unreadable file, text that is not UTF-8, or a
    file without rows.
    """
    path = Path(path)
    if is_parquet(path):
        lf = scan_table(path, columns=columns)
    else:
        separator, first = sniff(path)
        headerless = names is not None and first[0].lstrip("-").isdigit()
        lf = scan_text(path, separator=separator, columns=columns,
                       names=names if headerless else None)
    try:
        df = lf.select(columns).collect()
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"cannot read file: {err}", path=str(path)) from err
    if df.height == 0:
        raise DataError("file has no rows", path=str(path), hint="re-export it with its data")
    if not is_parquet(path):
        for column in columns:
            check_utf8(df, column, path)
    return df


def to_text(df: pl.DataFrame, column: str, path: Path, *, nullable: bool = False) -> pl.Series:
    """``column`` as String (ids or words); raises for another dtype or a missing value."""
    s = df[column]
    if s.dtype not in (pl.String, pl.Categorical, pl.Null):
        raise DataError(f"column has type {s.dtype}, expected text", path=str(path), column=column)
    if not nullable and s.null_count():
        raise DataError("value is missing", path=str(path), column=column,
                        row=first_bad_row(df, s.is_null()))
    return s.cast(pl.String)


def unix_time(df: pl.DataFrame, column: str, path: Path, unit: str) -> pl.Series:
    """``column`` of Unix times in ``unit`` (numbers or numeric text) as Datetime(us, UTC)."""
    if df.schema[column] == pl.String:
        df = df.with_columns(to_float(df, column, path))
    return to_timestamp(df, column, path, unit=unit)


def map_values(
    df: pl.DataFrame, column: str, path: Path, mapping: Mapping[str, str]
) -> pl.Series:
    """``column`` translated by ``mapping``; a value outside it raises naming its row."""
    s = to_text(df, column, path)
    out = s.replace_strict(dict(mapping), default=None, return_dtype=pl.String)
    bad = out.is_null()
    if bad.any():
        row = first_bad_row(df, bad)
        raise DataError(f"unknown value {s[row - 1]!r}, expected one of {list(mapping)}",
                        path=str(path), column=column, row=row)
    return out


def join_items(events: pl.DataFrame, items: pl.DataFrame, path: Path, key: str) -> pl.DataFrame:
    """Left-join item metadata (``item_id`` + columns) onto ``events``, keeping their order.

    ``items`` must hold one row per item (else every event of a repeated item would be
    duplicated); ``path`` and ``key`` name the metadata file and its item column in the error.
    """
    repeated = items["item_id"].is_duplicated()
    if repeated.any():
        row = first_bad_row(items, repeated)
        raise DataError(f"item {items['item_id'][row - 1]} has several rows", path=str(path),
                        column=key, row=row, hint="item metadata needs one row per item")
    return events.join(items, on="item_id", how="left", maintain_order="left")
