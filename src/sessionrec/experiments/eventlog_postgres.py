"""The event log on a PostgreSQL server (psycopg 3), for several API replicas.

Layout: one table ``experiment_events`` in the connection's schema (the first of its
``search_path``; a URL may pick one with ``?options=-csearch_path%3Dmyschema``): ``seq``
BIGSERIAL, lists as ``text[]`` / ``float8[]``, timestamps as ``timestamptz``,
``UNIQUE (experiment, idempotency_key)`` with ``ON CONFLICT DO NOTHING`` and an index on
``(experiment, recommendation_id)``. Replicas creating it at the same time serialise on an
advisory lock.

An append is one transaction (the inserts pipelined by ``executemany``); it is acknowledged
after COMMIT, i.e. durable as far as the server's ``synchronous_commit`` makes it (on by
default). When the connection breaks mid-append the append is retried once on a new
connection; the idempotency keys make that safe (events of the broken attempt that did
commit then report "not new"). ``seq`` comes from a sequence: with concurrent writers it
orders events by start of insertion, not commit.

Connections come from a small pool (``pool_size`` kept idle, more opened on demand), one per
thread at a time. Errors never show the password: they name user, host, port and database.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager

import polars as pl
import psycopg
from psycopg.conninfo import conninfo_to_dict

from sessionrec.errors import ConfigError
from sessionrec.experiments.eventlog import (
    EVENT_KINDS,
    EVENT_SCHEMA,
    Event,
    EventLog,
    EventLogError,
    EventLogUnavailable,
    event_from_row,
    frame_from_rows,
    from_micros,
)

log = logging.getLogger(__name__)

_CREATE = """
CREATE TABLE IF NOT EXISTS experiment_events (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    experiment TEXT NOT NULL,
    variant TEXT,
    unit_id TEXT,
    user_id TEXT,
    session_id TEXT,
    recommendation_id TEXT,
    product_ids TEXT[] NOT NULL,
    prices FLOAT8[],
    order_id TEXT,
    ts TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    orphan BOOLEAN NOT NULL,
    fallback BOOLEAN NOT NULL,
    placement TEXT,
    model TEXT,
    UNIQUE (experiment, idempotency_key)
);
CREATE INDEX IF NOT EXISTS experiment_events_recommendation
    ON experiment_events (experiment, recommendation_id);
ALTER TABLE experiment_events ADD COLUMN IF NOT EXISTS placement TEXT;
ALTER TABLE experiment_events ADD COLUMN IF NOT EXISTS model TEXT
"""

_SELECT = ", ".join(
    f"round(extract(epoch FROM {c}) * 1000000)::int8" if c in ("ts", "received_at") else c
    for c in EVENT_SCHEMA)
_INSERT = (f"INSERT INTO experiment_events ({', '.join(list(EVENT_SCHEMA)[1:])}) "
           f"VALUES ({', '.join(['%s'] * (len(EVENT_SCHEMA) - 1))}) "
           "ON CONFLICT (experiment, idempotency_key) DO NOTHING RETURNING 1")


class PostgresEventLog(EventLog):
    """Event log on the PostgreSQL server at ``url`` (``postgresql://user@host:port/db``).

    Connects once at construction (creating the table if needed), so a wrong or unreachable
    server fails at start-up with :class:`EventLogUnavailable`.
    """

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout_s: float = 5.0) -> None:
        try:
            info = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            # libpq's message may quote the URL, password included: not shown.
            raise ConfigError("event log: libpq cannot parse the PostgreSQL URL (expected "
                              "postgresql://user@host:port/db, special characters "
                              "percent-encoded)") from None
        self._url = url
        self._password = info.get("password")
        self.where = (f"PostgreSQL {info.get('user') or '(default user)'}@"
                      f"{info.get('host') or '(local socket)'}:{info.get('port') or 5432}/"
                      f"{info.get('dbname') or '(default database)'}")
        self.pool_size = int(pool_size)
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[psycopg.Connection] = []
        self._inherited: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self._run(f"creating table {self.table}", self._create_table)

    table = "experiment_events"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    @staticmethod
    def _create_table(conn: psycopg.Connection) -> None:
        _create_table(conn)

    # -- connections ------------------------------------------------------------------------
    def _redact(self, err: BaseException) -> str:
        diag = getattr(err, "diag", None)  # a server error: its message without the SQL echo
        text = (diag.message_primary if diag is not None and diag.message_primary
                else str(err)).strip()
        return text.replace(self._password, "***") if self._password else text

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=max(1, round(self.connect_timeout_s)),
                                   application_name=f"sessionrec-{self.table}")
        except psycopg.Error as err:
            raise EventLogUnavailable(f"event log: cannot connect to {self.where}: "
                                      f"{self._redact(err)}") from None

    @contextmanager
    def _connection(self):
        with self._lock:
            if self._closed:
                raise EventLogError(f"event log on {self.where} is closed")
            if os.getpid() != self._pid:
                # Never close a parent's connection in a child: it would end its session.
                self._inherited.extend(self._idle)
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                keep = (not self._closed and not conn.closed and not conn.broken
                        and len(self._idle) < self.pool_size)
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _run(self, what: str, work):
        """``work(conn)`` on a pooled connection, retried once on a new connection when the
        connection broke (everything here is idempotent: appends thanks to their keys)."""
        for attempt in (1, 2):
            conn = None
            try:
                with self._connection() as conn:
                    return work(conn)
            except psycopg.OperationalError as err:
                if attempt == 1 and conn is not None and conn.broken:
                    log.warning("event log on %s: connection lost during %s (%s); retrying "
                                "on a new connection", self.where, what, self._redact(err))
                    continue
                raise EventLogUnavailable(f"event log on {self.where}: {what} failed: "
                                          f"{self._redact(err)}") from None
            except psycopg.Error as err:
                raise EventLogError(f"event log on {self.where}: {what} failed: "
                                    f"{self._redact(err)}") from None
        raise AssertionError("unreachable")

    # -- EventLog ---------------------------------------------------------------------------
    def _insert(self, events: list[Event], now_us: int) -> list[bool]:
        received = from_micros(now_us)
        rows = [(e.kind, e.idempotency_key, e.experiment, e.variant, e.unit_id, e.user_id,
                 e.session_id, e.recommendation_id, list(e.product_ids),
                 None if e.prices is None else [None if p is None else float(p)
                                                for p in e.prices],
                 e.order_id, e.ts, received if e.received_at is None else e.received_at,
                 e.orphan, e.fallback, e.placement, e.model) for e in events]

        def work(conn: psycopg.Connection) -> list[bool]:
            flags = []
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_INSERT, rows, returning=True)
                while True:
                    flags.append(cur.fetchone() is not None)
                    if not cur.nextset():
                        break
            return flags

        return self._run("append", work)

    def read_frame(self, experiment: str | None = None) -> pl.DataFrame:
        where, args = ("WHERE experiment = %s", (experiment,)) if experiment is not None \
            else ("", ())
        rows = self._run("read", lambda conn: conn.execute(
            f"SELECT {_SELECT} FROM experiment_events {where} ORDER BY seq", args).fetchall())
        return frame_from_rows(rows, json_lists=False)

    def counts(self, experiment: str) -> dict[str, int]:
        found = dict(self._run("count", lambda conn: conn.execute(
            "SELECT kind, count(*) FROM experiment_events WHERE experiment = %s GROUP BY kind",
            (experiment,)).fetchall()))
        return {kind: found.get(kind, 0) for kind in EVENT_KINDS}

    def recommendation(self, experiment: str, recommendation_id: str) -> Event | None:
        row = self._run("recommendation lookup", lambda conn: conn.execute(
            f"SELECT {_SELECT} FROM experiment_events WHERE experiment = %s "
            "AND recommendation_id = %s AND kind = 'recommendation' ORDER BY seq LIMIT 1",
            (experiment, recommendation_id)).fetchone())
        return None if row is None else event_from_row(row)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _create_table(conn: psycopg.Connection) -> None:
    with conn.transaction():
        # Replicas starting together would otherwise race on CREATE TABLE IF NOT EXISTS.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('sessionrec.experiment_events'))")
        for statement in _CREATE.split(";"):
            conn.execute(statement)
