"""Reading raw tables with clear errors, and writing outputs atomically.

Polars' own errors say little about *where* a problem is; these helpers catch them and raise
:class:`DataError` naming the file, column and, where it can be found, the row.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from sessionrec.data.schema import TS_DTYPE
from sessionrec.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", ".dat", ".dat.gz")


def list_files(path: Path, suffixes: Sequence[str] = PARQUET_SUFFIXES + CSV_SUFFIXES) -> list[Path]:
    """The data files at ``path``: the file itself, or the matching files of a directory, sorted."""
    path = Path(path)
    if not path.exists():
        raise DataError("input does not exist", path=str(path))
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(tuple(suffixes)))
    if not files:
        raise DataError(
            f"directory has no data files (looked for {', '.join(suffixes)})", path=str(path)
        )
    return files


def scan_table(
    path: Path,
    *,
    separator: str | None = None,
    columns: Sequence[str] | None = None,
    schema_overrides: dict[str, pl.DataType] | None = None,
) -> pl.LazyFrame:
    """Lazily scan one Parquet or (optionally gzip-compressed) CSV/TSV file.

    Checks that the file is not empty and that ``columns`` (if given) are present, so that a
    missing column is reported with the file and the columns it does have.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file does not exist", path=str(path))
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=str(path), hint="remove it or re-export it")
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            lf = pl.scan_parquet(path)
        else:
            if separator is None:
                separator = "\t" if ".tsv" in name else ","
            lf = pl.scan_csv(
                path,
                separator=separator,
                schema_overrides=schema_overrides,
                encoding="utf8-lossy",
                infer_schema_length=10_000,
            )
        schema = lf.collect_schema()
    except (pl.exceptions.NoDataError, pl.exceptions.ComputeError, OSError) as err:
        raise DataError(f"cannot read file: {err}", path=str(path)) from err
    if len(schema) == 0:
        raise DataError("file has no columns", path=str(path))
    require_columns(schema, columns, path)
    return lf


def scan_text(
    path: Path,
    *,
    separator: str | None = None,
    columns: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """Lazily scan one (optionally gzip-compressed) CSV/TSV file with every column as text.

    Reading text and parsing afterwards (:func:`to_integer`, :func:`to_float`,
    :func:`to_timestamp`) lets a bad value anywhere in the file be reported with its row, where
    type inference would fail deep inside Polars. ``names`` reads a file without a header line
    (the names must match the number of fields); ``columns`` must be present, as in
    :func:`scan_table`. Bytes that are not UTF-8 become U+FFFD (see :func:`check_utf8`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file does not exist", path=str(path))
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=str(path), hint="remove it or re-export it")
    if separator is None:
        separator = "\t" if ".tsv" in path.name.lower() else ","
    try:
        lf = pl.scan_csv(
            path,
            separator=separator,
            has_header=names is None,
            new_columns=names,
            infer_schema=False,
            encoding="utf8-lossy",
        )
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"cannot read file: {err}", path=str(path)) from err
    require_columns(schema, columns, path)
    return lf


def require_columns(schema: pl.Schema, columns: Sequence[str] | None, path: Path) -> None:
    """Raise a DataError naming the file and the first missing column, if any is missing."""
    missing = [c for c in columns or () if c not in schema]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; the file has {list(schema)}",
            path=str(path),
            column=missing[0],
            hint="rename the columns or pick the matching --source",
        )


def first_bad_row(df: pl.DataFrame, mask: pl.Series) -> int | None:
    """1-based data row (header excluded) of the first ``True`` in ``mask``, else None."""
    idx = mask.arg_true()
    return None if idx.is_empty() else int(idx[0]) + 1


def check_ids(df: pl.DataFrame, column: str, path: Path, *, nullable: bool = False) -> None:
    """Raise if id ``column`` has nulls (unless ``nullable``) or is not integer/string."""
    dtype = df.schema[column]
    if not (dtype.is_integer() or dtype == pl.String):
        raise DataError(
            f"id column has type {dtype}, expected integers or strings", path=str(path),
            column=column,
        )
    if not nullable:
        nulls = df[column].is_null()
        if nulls.any():
            raise DataError(
                "id is missing", path=str(path), column=column, row=first_bad_row(df, nulls),
                hint="every event needs this id; drop such rows before preparing",
            )


def check_utf8(df: pl.DataFrame, column: str, path: Path) -> None:
    """Raise if ``column`` holds U+FFFD, i.e. bytes that were not valid UTF-8 in the file."""
    if column not in df.columns or df.schema[column] != pl.String:
        return
    bad = df[column].str.contains("\ufffd", literal=True).fill_null(False)
    if bad.any():
        raise DataError(
            "value is not valid UTF-8", path=str(path), column=column,
            row=first_bad_row(df, bad), hint="re-encode the file as UTF-8",
        )


def to_integer(df: pl.DataFrame, column: str, path: Path, *, nullable: bool = False) -> pl.Series:
    """``column`` as Int64: integers are cast, text is parsed; names the first bad row.

    Raises :class:`DataError` for another dtype, for text that is not a whole number and, unless
    ``nullable``, for a missing value.
    """
    return _to_number(df, column, path, pl.Int64(), nullable=nullable)


def to_float(df: pl.DataFrame, column: str, path: Path, *, nullable: bool = False) -> pl.Series:
    """``column`` as Float64: numbers are cast, text is parsed; names the first bad row."""
    return _to_number(df, column, path, pl.Float64(), nullable=nullable)


def _to_number(
    df: pl.DataFrame, column: str, path: Path, dtype: pl.DataType, *, nullable: bool
) -> pl.Series:
    s = df[column]
    accepted = s.dtype.is_integer() or (dtype == pl.Float64 and s.dtype.is_numeric())
    if not (accepted or s.dtype in (pl.String, pl.Null)):
        raise DataError(f"column has type {s.dtype}, expected {dtype} or text", path=str(path),
                        column=column)
    out = s.cast(dtype, strict=False)
    bad = out.is_null() & s.is_not_null()
    if bad.any():
        row = first_bad_row(df, bad)
        raise DataError(
            f"cannot parse {s[row - 1]!r} as {dtype}", path=str(path), column=column, row=row,
        )
    if not nullable and s.null_count():
        raise DataError("value is missing", path=str(path), column=column,
                        row=first_bad_row(df, s.is_null()))
    return out


def to_timestamp(
    df: pl.DataFrame, column: str, path: Path, *, unit: str | None = None
) -> pl.Series:
    """Parse ``column`` to Datetime(us, UTC), naming the first unparsable row on failure.

    ``unit`` ("s", "ms", "us") says how to read numbers as Unix time; strings are parsed as ISO
    8601 (a missing zone means UTC); datetimes and dates are converted to UTC.
    """
    s = df[column]
    dtype = s.dtype
    if dtype.is_numeric():
        if unit is None:
            raise DataError("numeric timestamps need a unit", path=str(path), column=column)
        factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
        # NaN, infinities and times beyond Datetime(us) become null (reported below) rather
        # than failing inside Polars or silently wrapping around.
        limit = 2**62 // factor
        wide = s.cast(pl.Float64)
        in_range = pl.select(pl.when((wide > -limit) & (wide < limit)).then(s)).to_series()
        if dtype.is_float():
            out = (in_range * factor).round(0).cast(pl.Int64).cast(pl.Datetime("us"))
        else:
            out = pl.from_epoch(in_range.cast(pl.Int64), time_unit=unit).cast(pl.Datetime("us"))
        out = out.dt.replace_time_zone("UTC")
    elif dtype == pl.String:
        out = _parse_string_ts(s)
    elif isinstance(dtype, pl.Datetime):
        out = s.cast(pl.Datetime("us", dtype.time_zone))
        out = (out.dt.replace_time_zone("UTC") if dtype.time_zone is None
               else out.dt.convert_time_zone("UTC"))
    elif dtype == pl.Date:
        out = s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    else:
        raise DataError(f"timestamp has type {dtype}", path=str(path), column=column)
    bad = out.is_null() & s.is_not_null()
    if bad.any() or s.is_null().any():
        mask = bad | s.is_null()
        row = first_bad_row(df, mask)
        value = s[row - 1] if row is not None else None
        raise DataError(
            f"cannot parse timestamp {value!r}", path=str(path), column=column, row=row,
            hint="use ISO 8601 (2024-01-31T12:00:00Z) or Unix time",
        )
    return out.cast(TS_DTYPE).alias("ts")


def _parse_string_ts(s: pl.Series) -> pl.Series:
    parsed = s.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    if parsed.is_null().sum() > s.is_null().sum():
        # Mixed or zone-less formats: try without zone handling, then assume UTC.
        alt = s.str.to_datetime(strict=False, time_unit="us")
        if isinstance(alt.dtype, pl.Datetime) and alt.dtype.time_zone is None:
            alt = alt.dt.replace_time_zone("UTC")
        parsed = parsed.fill_null(alt.cast(TS_DTYPE))
    return parsed


@contextlib.contextmanager
def atomic_directory(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; rename it to ``target`` on success.

    On any exception the temporary directory is removed and ``target`` is untouched, so a failed
    run never leaves a half-written output. With ``overwrite`` an existing ``target`` is replaced
    only after the new one is complete.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise DataError(
            "output directory already exists", path=str(target),
            hint="choose another --out or pass --overwrite",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
