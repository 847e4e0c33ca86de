"""The embedded event log: one SQLite file in WAL mode (the default backend).

Layout: one table ``experiment_events`` (``seq`` = rowid, in append order), lists as JSON
text, timestamps as integer microseconds since 1970 UTC, ``UNIQUE (experiment,
idempotency_key)`` with ``INSERT ... ON CONFLICT DO NOTHING``, and an index on
``(experiment, recommendation_id)`` for :meth:`SQLiteEventLog.recommendation`.
``PRAGMA user_version`` holds the layout version.

Durability: ``synchronous=FULL`` makes every commit fsync the WAL, so an acknowledged append
survives a crash of the process or of the machine.

Concurrency: each thread reads through a connection of its own (WAL readers never wait for
the writer). Writers of one process take a lock first, so they queue without SQLite's
sleep-and-retry; writers in other processes (uvicorn workers sharing the file) wait on
SQLite's busy timeout. A ``:memory:`` log has one connection, used under the lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from sessionrec.errors import ConfigError
from sessionrec.experiments.eventlog import (
    EVENT_KINDS,
    EVENT_SCHEMA,
    Event,
    EventLog,
    EventLogError,
    event_from_row,
    frame_from_rows,
    to_micros,
)

# 2: the placement column, 3: the model column (older logs gain the missing ones when opened)
LAYOUT_VERSION = 3
_ADDED_COLUMNS = ("placement", "model")  # columns added after version 1, in order

_CREATE = """
CREATE TABLE IF NOT EXISTS experiment_events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    experiment TEXT NOT NULL,
    variant TEXT,
    unit_id TEXT,
    user_id TEXT,
    session_id TEXT,
    recommendation_id TEXT,
    product_ids TEXT NOT NULL,
    prices TEXT,
    order_id TEXT,
    ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    orphan INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    placement TEXT,
    model TEXT,
    UNIQUE (experiment, idempotency_key)
);
CREATE INDEX IF NOT EXISTS experiment_events_recommendation
    ON experiment_events (experiment, recommendation_id);
"""

_COLUMNS = ", ".join(EVENT_SCHEMA)
_INSERT = (f"INSERT INTO experiment_events ({', '.join(list(EVENT_SCHEMA)[1:])}) "
           f"VALUES ({', '.join('?' * (len(EVENT_SCHEMA) - 1))}) "
           "ON CONFLICT (experiment, idempotency_key) DO NOTHING")


def _set_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch ``conn``'s database to write-ahead logging, waiting out other openers.

    Changing the journal mode needs an exclusive lock, and SQLite does not always call the
    busy handler for it: two processes opening a new file at once can see "database is
    locked" at once.  The switch is retried until ``timeout_s`` has passed.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class SQLiteEventLog(EventLog):
    """Event log in the SQLite file ``path`` (created with its directory), or ``":memory:"``.

    ``busy_timeout_s``: how long a write waits for another process's write lock before it
    fails with :class:`EventLogError`.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = str(path)
        self.busy_timeout_s = float(busy_timeout_s)
        self._memory = self.path == ":memory:"
        self._write_lock = threading.Lock()
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._create_layout(self._connection())

    def __repr__(self) -> str:
        return f"SQLiteEventLog({self.path!r})"

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                   isolation_level=None, check_same_thread=False)
            _set_wal(conn, self.busy_timeout_s)
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as err:
            raise ConfigError(f"event log {self.path}: cannot open it as an SQLite database "
                              f"({err})") from err
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise EventLogError(f"event log {self.path} is closed")
        if os.getpid() != self._pid:
            self._after_fork()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._conns[0] if self._memory and self._conns else self._connect()
            self._local.conn = conn
            with self._conns_lock:
                if conn not in self._conns:
                    self._conns.append(conn)
        return conn

    def _after_fork(self) -> None:
        # A connection must not cross fork(); closing the parent's in the child could disturb
        # the parent's locks, so they are only kept from being finalised.
        if not self._memory:
            self._inherited.extend(self._conns)
            self._conns = []
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._conns_lock = threading.Lock()
        self._pid = os.getpid()

    @contextmanager
    def _reading(self):
        if not self._memory:
            yield self._connection()
            return
        with self._write_lock:
            yield self._connection()

    @contextmanager
    def _transaction(self):
        conn = self._connection()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not at first write
            except sqlite3.OperationalError as err:
                raise EventLogError(f"event log {self.path}: cannot start a write within "
                                    f"{self.busy_timeout_s:g} s ({err})") from err
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _create_layout(self, conn: sqlite3.Connection) -> None:
        with self._transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master "
                                  "WHERE name = 'experiment_events'").fetchone()[0]
            if tables and 1 <= version < LAYOUT_VERSION:
                have = {row[1] for row in conn.execute("PRAGMA table_info(experiment_events)")}
                for column in _ADDED_COLUMNS:
                    if column not in have:
                        conn.execute(f"ALTER TABLE experiment_events ADD COLUMN {column} TEXT")
                version = LAYOUT_VERSION
            if tables and version != LAYOUT_VERSION:
                raise ConfigError(f"event log {self.path}: layout version {version}, this "
                                  f"sessionrec reads version {LAYOUT_VERSION}")
            for statement in _CREATE.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")

    # -- EventLog ---------------------------------------------------------------------------
    def _insert(self, events: list[Event], now_us: int) -> list[bool]:
        rows = [_encode(e, now_us) for e in events]
        try:
            with self._transaction() as conn:
                cur = conn.cursor()
                flags = []
                for row in rows:
                    cur.execute(_INSERT, row)
                    flags.append(cur.rowcount == 1)
        except sqlite3.Error as err:
            raise EventLogError(f"event log {self.path}: append failed ({err})") from err
        return flags

    def read_frame(self, experiment: str | None = None) -> pl.DataFrame:
        where, args = ("WHERE experiment = ?", (experiment,)) if experiment is not None \
            else ("", ())
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM experiment_events {where} "
                                "ORDER BY seq", args).fetchall()
        return frame_from_rows(rows, json_lists=True)

    def counts(self, experiment: str) -> dict[str, int]:
        with self._reading() as conn:
            found = dict(conn.execute("SELECT kind, count(*) FROM experiment_events "
                                      "WHERE experiment = ? GROUP BY kind", (experiment,)))
        return {kind: found.get(kind, 0) for kind in EVENT_KINDS}

    def recommendation(self, experiment: str, recommendation_id: str) -> Event | None:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM experiment_events WHERE experiment = ? "
                               "AND recommendation_id = ? AND kind = 'recommendation' "
                               "ORDER BY seq LIMIT 1", (experiment, recommendation_id)
                               ).fetchone()
        if row is None:
            return None
        row = list(row)
        row[9] = json.loads(row[9])
        row[10] = None if row[10] is None else json.loads(row[10])
        return event_from_row(row)

    def close(self) -> None:
        with self._write_lock, self._conns_lock:
            if self._closed:
                return
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()


def _encode(e: Event, now_us: int) -> tuple:
    return (e.kind, e.idempotency_key, e.experiment, e.variant, e.unit_id, e.user_id,
            e.session_id, e.recommendation_id, json.dumps(e.product_ids, separators=(",", ":")),
            None if e.prices is None else json.dumps(
                [None if p is None else float(p) for p in e.prices], separators=(",", ":")),
            e.order_id, to_micros(e.ts),
            now_us if e.received_at is None else to_micros(e.received_at),
            int(e.orphan), int(e.fallback), e.placement, e.model)
