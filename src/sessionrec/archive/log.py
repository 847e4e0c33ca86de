"""The archive's storage: the experiment event log's two backends, grown a second table.

``open_archive(url)`` takes the event log's URLs (:func:`~sessionrec.experiments.eventlog.
open_event_log`): ``sqlite:///archive.db`` (embedded, the default kind: WAL, ``synchronous=
FULL``) or ``postgresql://user@host:port/db`` (several API replicas). The archive reuses
their connection handling, durability (an append returns once its transaction is durable)
and idempotency (``ON CONFLICT (idempotency_key) DO NOTHING``: a resent event is kept once),
and :class:`~sessionrec.experiments.eventlog_async.AsyncEventLog` gives the API the same
group commit. Table ``archive_events``: lists as JSON text (SQLite) or arrays (PostgreSQL),
times as integer microseconds (SQLite) or ``timestamptz``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import polars as pl
import psycopg

from sessionrec.archive.record import (
    ARCHIVE_KINDS,
    ARCHIVE_SCHEMA,
    ArchiveEvent,
    validate_archive_events,
)
from sessionrec.experiments.eventlog import EventLogError, from_micros, parse_log_url, to_micros
from sessionrec.experiments.eventlog_postgres import PostgresEventLog
from sessionrec.experiments.eventlog_sqlite import SQLiteEventLog

_COLUMNS = list(ARCHIVE_SCHEMA)[1:]  # without seq

_SQLITE_CREATE = """
CREATE TABLE IF NOT EXISTS archive_events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    session_id TEXT, user_id TEXT, device_id TEXT,
    product_ids TEXT NOT NULL, prices TEXT, order_id TEXT, placement TEXT,
    recommendation_id TEXT, user_agent TEXT,
    ts INTEGER NOT NULL, received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_events_ts ON archive_events (ts)
"""

_PG_CREATE = """
CREATE TABLE IF NOT EXISTS archive_events (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    session_id TEXT, user_id TEXT, device_id TEXT,
    product_ids TEXT[] NOT NULL, prices FLOAT8[], order_id TEXT, placement TEXT,
    recommendation_id TEXT, user_agent TEXT,
    ts TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_events_ts ON archive_events (ts)
"""


def _frame(rows: list, *, json_lists: bool) -> pl.DataFrame:
    raw = dict(ARCHIVE_SCHEMA)
    raw["ts"] = raw["received_at"] = pl.Int64()
    if json_lists:
        raw["product_ids"] = raw["prices"] = pl.Utf8()
    df = pl.DataFrame(rows, schema=raw, orient="row")
    fixes = [pl.from_epoch(c, time_unit="us").dt.replace_time_zone("UTC")
             for c in ("ts", "received_at")]
    if json_lists:
        fixes += [pl.col("product_ids").str.json_decode(ARCHIVE_SCHEMA["product_ids"]),
                  pl.col("prices").str.json_decode(ARCHIVE_SCHEMA["prices"])]
    return df.with_columns(fixes).cast(ARCHIVE_SCHEMA)


def _values(e: ArchiveEvent) -> dict:
    return {c: getattr(e, c) for c in _COLUMNS}


class SQLiteArchive(SQLiteEventLog):
    """The archive in one SQLite file (or ``":memory:"``)."""

    validate = staticmethod(validate_archive_events)

    def _create_layout(self, conn: sqlite3.Connection) -> None:
        with self._transaction():
            for statement in _SQLITE_CREATE.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def _insert(self, events: list[ArchiveEvent], now_us: int) -> list[bool]:
        sql = (f"INSERT INTO archive_events ({', '.join(_COLUMNS)}) VALUES "
               f"({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (idempotency_key) DO NOTHING")
        rows = []
        for e in events:
            v = _values(e)
            v["product_ids"] = json.dumps(list(e.product_ids), separators=(",", ":"))
            v["prices"] = None if e.prices is None else json.dumps([float(p) for p in e.prices])
            v["ts"] = to_micros(e.ts)
            v["received_at"] = now_us if e.received_at is None else to_micros(e.received_at)
            rows.append(tuple(v[c] for c in _COLUMNS))
        try:
            with self._transaction() as conn:
                cur = conn.cursor()
                flags = []
                for row in rows:
                    cur.execute(sql, row)
                    flags.append(cur.rowcount == 1)
        except sqlite3.Error as err:
            raise EventLogError(f"archive {self.path}: append failed ({err})") from err
        return flags

    def read_frame(self, since: datetime | None = None) -> pl.DataFrame:  # type: ignore[override]
        """Every event (with ``ts >= since``), by ``seq``, as :data:`ARCHIVE_SCHEMA`."""
        where, args = ("WHERE ts >= ?", (to_micros(since),)) if since else ("", ())
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {', '.join(ARCHIVE_SCHEMA)} FROM archive_events "
                                f"{where} ORDER BY seq", args).fetchall()
        return _frame(rows, json_lists=True)

    def counts(self, experiment: str | None = None) -> dict[str, int]:
        """Events per kind (every kind, zeros included)."""
        with self._reading() as conn:
            found = dict(conn.execute("SELECT kind, count(*) FROM archive_events "
                                      "GROUP BY kind"))
        return {kind: found.get(kind, 0) for kind in ARCHIVE_KINDS}

    def recommendation(self, experiment: str, recommendation_id: str):
        raise EventLogError("the archive keeps no recommendations: look them up in the "
                            "experiment's event log")


class PostgresArchive(PostgresEventLog):
    """The archive on a PostgreSQL server (several API replicas append to one table)."""

    table = "archive_events"
    validate = staticmethod(validate_archive_events)

    @staticmethod
    def _create_table(conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('sessionrec.archive_events'))")
            for statement in _PG_CREATE.split(";"):
                conn.execute(statement)

    def _insert(self, events: list[ArchiveEvent], now_us: int) -> list[bool]:
        received = from_micros(now_us)
        sql = (f"INSERT INTO archive_events ({', '.join(_COLUMNS)}) VALUES "
               f"({', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT (idempotency_key) "
               "DO NOTHING RETURNING 1")
        rows = []
        for e in events:
            v = _values(e)
            v["product_ids"] = list(e.product_ids)
            v["prices"] = None if e.prices is None else [float(p) for p in e.prices]
            v["received_at"] = received if e.received_at is None else e.received_at
            rows.append(tuple(v[c] for c in _COLUMNS))

        def work(conn: psycopg.Connection) -> list[bool]:
            flags = []
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows, returning=True)
                while True:
                    flags.append(cur.fetchone() is not None)
                    if not cur.nextset():
                        break
            return flags

        return self._run("archive append", work)

    def read_frame(self, since: datetime | None = None) -> pl.DataFrame:  # type: ignore[override]
        select = ", ".join(f"round(extract(epoch FROM {c}) * 1000000)::int8"
                           if c in ("ts", "received_at") else c for c in ARCHIVE_SCHEMA)
        where, args = ("WHERE ts >= %s", (since,)) if since else ("", ())
        rows = self._run("archive read", lambda conn: conn.execute(
            f"SELECT {select} FROM archive_events {where} ORDER BY seq", args).fetchall())
        return _frame(rows, json_lists=False)

    def counts(self, experiment: str | None = None) -> dict[str, int]:
        found = dict(self._run("archive count", lambda conn: conn.execute(
            "SELECT kind, count(*) FROM archive_events GROUP BY kind").fetchall()))
        return {kind: found.get(kind, 0) for kind in ARCHIVE_KINDS}

    def recommendation(self, experiment: str, recommendation_id: str):
        raise EventLogError("the archive keeps no recommendations: look them up in the "
                            "experiment's event log")


def open_archive(url: str) -> SQLiteArchive | PostgresArchive:
    """Open (creating its table if needed) the archive at ``url`` (see the module docstring)."""
    kind, where = parse_log_url(url, "archive", "archive.db")
    return SQLiteArchive(where) if kind == "sqlite" else PostgresArchive(where)
