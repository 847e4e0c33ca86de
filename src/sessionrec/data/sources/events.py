"""``--source events``: a user's own click log, with a column mapping.

``path`` is one file or a folder of CSV/TSV (optionally gzip), Parquet or NDJSON (``.ndjson``,
``.jsonl``, ``.json``) files, read in name order. The mapping says which of the user's columns
holds each canonical field (``--map item_id=product`` or a ``[source]`` table in the prepare
config)::

    [source]
    session_id = "sid"      # optional: without it, sessions are cut by the inactivity gap per user
    item_id = "product"     # required
    ts = "time"             # Unix s/ms/µs (ts_unit) or ISO 8601 with zone; or else ...
    order = "seq"           # ... an explicit order (whole numbers) where there is no timestamp
    user_id = "customer"    # optional: makes the run user-aware (last-session split)
    event_type = "kind"     # optional, like brand, category, price, user_agent

Unmapped canonical fields are looked up under their own names (a log that already uses
``session_id``, ``item_id``, ``ts`` needs no mapping). Every error names the file, the user's
column and the 1-based data row: missing mapped columns, unparseable or out-of-range times, mixed
zone-aware and zone-less times, empty files, text that is not UTF-8, and duplicate rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from sessionrec.data.io import CSV_SUFFIXES, PARQUET_SUFFIXES, check_utf8, list_files
from sessionrec.data.schema import TS_DTYPE
from sessionrec.data.sources import event_values as values
from sessionrec.data.sources._common import read_columns
from sessionrec.data.sources.base import Source, register
from sessionrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

JSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
FIELDS = ("session_id", "user_id", "item_id", "ts", "order", "event_type", "brand", "category",
          "price", "user_agent")
TEXT_FIELDS = ("event_type", "brand", "category", "user_agent")
ORIGIN_US = 0  # events with an order but no time get ts = 1970-01-01 + order µs


@dataclass(frozen=True)
class SourceConfig:
    """Column mapping for ``--source events`` (canonical field -> the log's column name).

    ``None`` means "the column of the canonical name, if the file has it". ``ts_unit`` says how
    numeric times are read ("auto" guesses s/ms/µs from their magnitude). Other sources take
    no mapping.
    """

    session_id: str | None = None
    user_id: str | None = None
    item_id: str | None = None
    ts: str | None = None
    order: str | None = None
    event_type: str | None = None
    brand: str | None = None
    category: str | None = None
    price: str | None = None
    user_agent: str | None = None
    ts_unit: Literal["auto", "s", "ms", "us"] = "auto"

    def is_default(self) -> bool:
        return self == SourceConfig()


def parse_maps(items: list[str]) -> list[str]:
    """``--map FIELD=COLUMN`` options as ``source.FIELD="COLUMN"`` config overrides."""
    out = []
    for item in items:
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ConfigError(f"--map {item!r} is not of the form FIELD=COLUMN")
        if field not in FIELDS and field != "ts_unit":
            raise ConfigError(f"--map: unknown field {field!r}; fields: {', '.join(FIELDS)}")
        out.append(f"source.{field}={json.dumps(column)}")
    return out


def file_columns(path: Path) -> list[str]:
    """The column names of one data file (header, Parquet schema or first JSON object)."""
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return list(pl.read_parquet_schema(path))
        if name.endswith(JSON_SUFFIXES):
            return list(_read_json(path).columns)
        from sessionrec.data.sources._common import sniff

        return sniff(path)[1]
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"cannot read file: {err}", path=str(path)) from err


def resolve_columns(cfg: SourceConfig, available: list[str], path: Path) -> dict[str, str]:
    """canonical field -> column of this file; raises for a mapped column the file lacks."""
    columns = {}
    for field in FIELDS:
        mapped = getattr(cfg, field)
        if mapped is not None:
            if mapped not in available:
                raise DataError(f"mapped column {mapped!r} (for {field}) is missing; the file "
                                f"has {available}", path=str(path), column=mapped,
                                hint=f"fix the mapping with --map {field}=COLUMN")
            columns[field] = mapped
        elif field in available:
            columns[field] = field
    if "item_id" not in columns:
        raise DataError(f"no item column: map one with --map item_id=COLUMN (the file has "
                        f"{available})", path=str(path), column="item_id")
    if "ts" not in columns and "order" not in columns:
        raise DataError(f"no time column: map a timestamp (--map ts=COLUMN) or an explicit "
                        f"order (--map order=COLUMN); the file has {available}", path=str(path))
    if "session_id" not in columns and "user_id" not in columns:
        raise DataError("neither a session nor a user column: map --map session_id=COLUMN or "
                        f"--map user_id=COLUMN (the file has {available})", path=str(path))
    return columns


def _read_json(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise DataError("text is not valid UTF-8", path=str(path), row=line,
                        hint="re-encode the file as UTF-8") from err
    if not raw.strip():
        raise DataError("file is empty", path=str(path), hint="remove it or re-export it")
    try:
        return pl.read_ndjson(raw, infer_schema_length=None)
    except pl.exceptions.PolarsError as err:
        raise DataError(f"cannot read NDJSON (one JSON object per line): {err}",
                        path=str(path)) from err


def read_raw(path: Path, columns: list[str]) -> pl.DataFrame:
    """The named columns of one file, rows in file order; raises for empty/unreadable files."""
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=str(path), hint="remove it or re-export it")
    if path.name.lower().endswith(JSON_SUFFIXES):
        df = _read_json(path)
        if df.height == 0:
            raise DataError("file has no rows", path=str(path))
        for column in columns:
            check_utf8(df, column, path)
        return df.select(columns)
    return read_columns(path, columns)


def read_file(path: Path, cfg: SourceConfig) -> pl.DataFrame:
    """Canonical events of one file plus ``_order`` (when mapped), in file order."""
    cols = resolve_columns(cfg, file_columns(path), path)
    df = read_raw(path, sorted(set(cols.values())))
    out: dict[str, pl.Series] = {}
    out["item_id"] = values.ids(df, cols["item_id"], path)
    if "session_id" in cols:
        out["session_id"] = values.ids(df, cols["session_id"], path)
    user_nullable = "session_id" in cols  # a log sessionized per user needs every user
    out["user_id"] = (values.ids(df, cols["user_id"], path, nullable=user_nullable)
                      if "user_id" in cols else pl.Series([None] * df.height, dtype=pl.Int64))
    if "order" in cols:
        out["_order"] = values.order_values(df, cols["order"], path)
    if "ts" in cols:
        out["ts"] = values.timestamps(df, cols["ts"], path, cfg.ts_unit)
    else:
        out["ts"] = (out["_order"] + ORIGIN_US).cast(pl.Datetime("us")).dt.replace_time_zone(
            "UTC").cast(TS_DTYPE)
    for field in TEXT_FIELDS:
        if field in cols:
            out[field] = df[cols[field]].cast(pl.String)
    if "price" in cols:
        out["price"] = values.prices(df, cols["price"], path)
    return pl.DataFrame({k: v.alias(k) for k, v in out.items()})


def _unify(frames: list[pl.DataFrame], files: list[Path]) -> pl.DataFrame:
    """One frame from the per-file frames: same columns and id types everywhere."""
    first = set(frames[0].columns)
    for path, df in zip(files, frames, strict=True):
        if set(df.columns) != first:
            diff = sorted(first ^ set(df.columns))
            raise DataError(f"file's mapped fields differ from the first file's ({diff})",
                            path=str(path), column=diff[0])
    for col in ("session_id", "user_id", "item_id"):
        if col in first and any(df.schema[col] == pl.String for df in frames):
            frames = [df.with_columns(pl.col(col).cast(pl.String)) for df in frames]
    df = pl.concat(frames, how="vertical")
    return df.with_columns(values.unify_ids(df[c]) for c in ("session_id", "user_id", "item_id")
                           if c in first)


def check_duplicates(df: pl.DataFrame, files: list[Path], sizes: list[int]) -> None:
    """Raise for a row equal in every field to an earlier one, naming both places."""
    data = [c for c in df.columns if not c.startswith("_file")]
    repeat = ~df.select(pl.struct(data).is_first_distinct()).to_series()
    if not repeat.any():
        return
    at = int(repeat.arg_true()[0])
    key = df.select(pl.struct(data).hash().alias("h"))["h"]
    same = int((key == key[at]).arg_true()[0])
    path, line = _locate(at, files, sizes)
    first_path, first_line = _locate(same, files, sizes)
    raise DataError(f"duplicate row: every field equals row {first_line} of {first_path}",
                    path=str(path), row=line,
                    hint="remove repeated rows (a logged event is recorded once)")


def _locate(index: int, files: list[Path], sizes: list[int]) -> tuple[Path, int]:
    for path, size in zip(files, sizes, strict=True):
        if index < size:
            return path, index + 1
        index -= size
    raise IndexError(index)


def data_files(path: Path) -> list[Path]:
    return list_files(Path(path), PARQUET_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES)


def read_events(path: Path, cfg: SourceConfig | None = None) -> pl.LazyFrame:
    """Canonical events of every file at ``path``, ordered by ``order`` when one is mapped."""
    cfg = cfg or SourceConfig()
    files = data_files(path)
    frames = [read_file(p, cfg) for p in files]
    df = _unify(frames, files)
    check_duplicates(df, files, [f.height for f in frames])
    if "session_id" not in df.columns:
        df = df.with_columns(session_id=pl.col("user_id"))  # cut into visits by the gap
    if "_order" in df.columns:
        df = df.sort("_order", maintain_order=True).drop("_order")
    log.info("events: %d rows from %d file(s)", df.height, len(files))
    return df.lazy()


def bind(source: Source, cfg: SourceConfig, path: Path) -> Source:
    """``source`` ready to read; for ``events`` the mapped columns decide its defaults.

    A user column makes the run user-aware with a last-session split; without session ids the
    sessions are cut by the inactivity gap per user; without timestamps (an ``order`` column)
    the sessions must be given and the split per user, since there is no time to cut at.
    """
    if source.name != "events":
        if not cfg.is_default():
            raise ConfigError(f"[source] column mapping applies to --source events only, not "
                              f"{source.name!r}")
        return source
    first = data_files(path)[0]
    cols = resolve_columns(cfg, file_columns(first), first)
    has_user, has_session = "user_id" in cols, "session_id" in cols
    if "ts" not in cols and not (has_user and has_session):
        raise ConfigError("a log without timestamps (only an order column) needs both a session "
                          "and a user column: sessions cannot be cut by time, and the split is "
                          "each user's last session (--map session_id=... --map user_id=...)")
    return dataclasses.replace(
        source, read=lambda p: read_events(p, cfg), user_aware=has_user,
        session_key="given" if has_session else "gap",
        split="last_session" if has_user else "time")


SOURCE = register(Source(
    name="events",
    read=read_events,
    description="your own click log (CSV, Parquet or NDJSON files or folders) with a column "
                "mapping: --map session_id=... --map item_id=... --map ts=... (see README)",
    user_aware=False,
    session_key="given",
    split="time",
))
