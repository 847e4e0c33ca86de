"""The experiment event log: one suite for both backends (SQLite file and in-memory, PostgreSQL).

PostgreSQL tests use ``SESSIONREC_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/sessionrec_test``), each in a schema of its own that is
dropped afterwards. Without a server they skip, unless ``SESSIONREC_REQUIRE_POSTGRES=1`` (CI),
where they fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from sessionrec.errors import ConfigError, DataError
from sessionrec.experiments.eventlog import (
    EVENT_SCHEMA,
    Event,
    EventLogError,
    EventLogUnavailable,
    open_event_log,
)
from sessionrec.experiments.eventlog_async import AsyncEventLog
from sessionrec.experiments.eventlog_sqlite import SQLiteEventLog

POSTGRES_URL = os.environ.get("SESSIONREC_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/sessionrec_test")
SHOWN_URL = re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", POSTGRES_URL)  # no password
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def click(key: str, experiment: str = "exp", product: str = "p1", minute: int = 0,
          **fields) -> Event:
    return Event(kind="click", idempotency_key=key, experiment=experiment,
                 product_ids=[product], ts=T0 + timedelta(minutes=minute), **fields)


# -- backends ---------------------------------------------------------------------------------
def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("SESSIONREC_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"SESSIONREC_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres_server() -> str:
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("psycopg is not installed (pip install -e '.[serve]')")
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.Error as err:
        _postgres_unavailable(f"no PostgreSQL server at {SHOWN_URL} ({err})")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server):
    """A URL whose tables live in a fresh schema of this test's own, dropped afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def file_url(request, tmp_path) -> str:
    """A log URL of a durable backend (one that other processes can open)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/events.db"


@pytest.fixture
def url(request, tmp_path) -> str:
    if request.param == "sqlite-memory":
        return "sqlite://:memory:"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/events.db"


ALL_BACKENDS = pytest.mark.parametrize("url", ["sqlite", "sqlite-memory", "postgresql"],
                                       indirect=True)
DURABLE_BACKENDS = pytest.mark.parametrize("file_url", ["sqlite", "postgresql"], indirect=True)


# -- the contract -----------------------------------------------------------------------------
@ALL_BACKENDS
def test_a_repeated_idempotency_key_counts_once(url):
    with open_event_log(url) as log:
        assert log.append_each([click("a"), click("b"), click("a", product="p2")]) == \
            [True, True, False]
        assert log.append([click("a"), click("c")]) == 1
        assert log.append([click("a", experiment="other")]) == 1  # keys are per experiment
        frame = log.read_frame("exp")
    assert frame["idempotency_key"].to_list() == ["a", "b", "c"]
    assert frame["product_ids"].to_list() == [["p1"], ["p1"], ["p1"]]  # the first "a" stays


@ALL_BACKENDS
def test_read_frame_has_the_canonical_schema_values_and_seq_order(url):
    received = datetime(2026, 1, 6, tzinfo=UTC)
    events = [
        Event(kind="assignment", idempotency_key="as:u1", experiment="exp", variant="gru",
              unit_id="u1", user_id="u1", ts=T0),
        Event(kind="recommendation", idempotency_key="rec:r1", experiment="exp", variant="gru",
              unit_id="u1", user_id="u1", session_id="s1", recommendation_id="r1",
              product_ids=["p3", "p1", "Ümlaut-9"], ts=T0 + timedelta(seconds=1),
              fallback=True),
        Event(kind="purchase", idempotency_key="buy:o7", experiment="exp", variant="gru",
              unit_id="u1", user_id="u1", session_id="s2", product_ids=["p3", "p4"],
              prices=[19.5, None], order_id="o7", ts=T0 - timedelta(hours=1),  # out of order
              received_at=received),
        Event(kind="impression", idempotency_key="imp:1", experiment="exp",
              recommendation_id="gone", product_ids=[], ts=T0.astimezone(timezone(
                  timedelta(hours=2))), orphan=True),
    ]
    with open_event_log(url) as log:
        log.append(events[:2])
        log.append(events[2:])
        log.append([click("elsewhere", experiment="other")])
        before = datetime.now(UTC)
        frame = log.read_frame("exp")
        everything = log.read_frame()
        empty = log.read_frame("nothing-here")
    assert frame.schema == pl.Schema(EVENT_SCHEMA)
    assert empty.schema == pl.Schema(EVENT_SCHEMA) and empty.height == 0
    assert everything.height == 5 and everything["experiment"][-1] == "other"
    seq = frame["seq"].to_list()
    assert seq == sorted(seq) and len(set(seq)) == 4
    rows = frame.drop("seq", "received_at").to_dicts()
    assert rows[0] == {"kind": "assignment", "idempotency_key": "as:u1", "experiment": "exp",
                       "variant": "gru", "unit_id": "u1", "user_id": "u1", "session_id": None,
                       "recommendation_id": None, "product_ids": [], "prices": None,
                       "order_id": None, "ts": T0, "orphan": False, "fallback": False,
                       "placement": None, "model": None}
    assert rows[1]["product_ids"] == ["p3", "p1", "Ümlaut-9"] and rows[1]["fallback"] is True
    assert rows[2]["prices"] == [19.5, None] and rows[2]["ts"] == T0 - timedelta(hours=1)
    assert rows[3]["ts"] == T0 and rows[3]["orphan"] is True  # +02:00 stored as UTC
    assert frame["received_at"][2] == received
    filled = frame["received_at"][0]
    assert before - timedelta(minutes=5) < filled <= before


@ALL_BACKENDS
def test_recommendation_lookup_and_counts(url):
    rec = Event(kind="recommendation", idempotency_key="rec:r1", experiment="exp",
                variant="gru", unit_id="u1", session_id="s1", recommendation_id="r1",
                product_ids=["p1", "p2"], ts=T0, received_at=T0 + timedelta(seconds=1))
    with open_event_log(url) as log:
        log.append([click("c1", recommendation_id="r1"), rec, click("c2", minute=1),
                    Event(kind="impression", idempotency_key="i1", experiment="exp",
                          recommendation_id="r1", product_ids=["p1"], ts=T0)])
        assert log.recommendation("exp", "r1") == rec  # not the click that names r1
        assert log.recommendation("exp", "r2") is None
        assert log.recommendation("other", "r1") is None
        assert log.counts("exp") == {"assignment": 0, "recommendation": 1, "impression": 1,
                                     "click": 2, "purchase": 0}
        assert log.counts("other") == dict.fromkeys(
            ("assignment", "recommendation", "impression", "click", "purchase"), 0)


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "view"}, "kind"),
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"experiment": None}, "experiment"),
    ({"product_ids": [1]}, "product_ids"),
    ({"product_ids": "p1"}, "product_ids"),
    ({"product_ids": ["p1", "p2"]}, "product_ids"),  # a click names one product
    ({"prices": [1.0, 2.0]}, "prices"),  # not parallel to product_ids
    ({"prices": [float("nan")]}, "prices"),
    ({"prices": [True]}, "prices"),
    ({"ts": datetime(2026, 1, 1)}, "ts"),  # naive
    ({"received_at": "2026-01-01"}, "received_at"),
    ({"variant": 3}, "variant"),
    ({"session_id": "s\x00"}, "session_id"),  # PostgreSQL cannot store NUL
    ({"product_ids": ["\ud800"]}, "product_ids"),  # a lone surrogate is not UTF-8
    ({"orphan": 1}, "orphan"),
])
def test_an_invalid_event_names_its_field_and_nothing_is_written(change, field):
    bad = Event(**{"kind": "click", "idempotency_key": "k", "experiment": "exp",
                   "product_ids": ["p1"], "ts": T0, **change})
    with open_event_log("sqlite://:memory:") as log:
        with pytest.raises(DataError, match=field) as info:
            log.append([click("fine"), bad])
        assert info.value.column == field and info.value.row == 1
        assert log.read_frame().height == 0


@DURABLE_BACKENDS
def test_a_failing_append_writes_nothing(file_url):
    with open_event_log(file_url) as log:
        log.append([click("a")])
        with pytest.raises(DataError, match="kind"):
            log.append([click("b"), Event(kind="nope", idempotency_key="c", experiment="exp",
                                          ts=T0)])
        assert log.read_frame()["idempotency_key"].to_list() == ["a"]


@ALL_BACKENDS
def test_concurrent_appends_from_threads(url):
    # 4 threads x 20 appends of 2 events; the "shared" keys are the same in every thread.
    with open_event_log(url) as log:
        new = [0] * 4

        def work(t: int) -> None:
            for i in range(20):
                new[t] += log.append([click(f"own-{t}-{i}"), click(f"shared-{i}")])
                log.recommendation("exp", "none")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        frame = log.read_frame("exp")
    assert sum(new) == 4 * 20 + 20 == frame.height
    assert frame["idempotency_key"].n_unique() == frame.height
    assert frame["seq"].is_sorted() and frame["seq"].n_unique() == frame.height


# -- async group commit -----------------------------------------------------------------------
class GatedLog(SQLiteEventLog):
    """An in-memory log that records the size of each transaction; the first one waits for
    ``gate`` (so that appends queue up behind it) and one holding the key "full" fails, as
    when the disk is full."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.transactions: list[int] = []
        self.gate = threading.Event()

    def _insert(self, events, now_us):
        self.transactions.append(len(events))
        if len(self.transactions) == 1:
            self.gate.wait(10)
        if any(e.idempotency_key == "full" for e in events):
            raise EventLogError("disk full")
        return super()._insert(events, now_us)


def _gathered(front: AsyncEventLog, log: GatedLog, appends: list) -> list:
    """Answers of the first append and of ``appends`` queued while the first is committing."""

    async def main():
        first = asyncio.ensure_future(front.append([click("first")]))
        while not log.transactions:  # the writer is now held inside the first transaction
            await asyncio.sleep(0.001)
        rest = asyncio.gather(*(front.append_each(events) for events in appends),
                              return_exceptions=True)
        await asyncio.sleep(0.02)  # every append above has queued (or failed validation)
        log.gate.set()
        return [await first, *await rest]

    return asyncio.run(main())


def test_async_appends_share_one_commit_and_each_caller_gets_its_own_answer():
    log = GatedLog()
    front = AsyncEventLog(log)
    appends = [[click(f"k{i}"), click("dup")] for i in range(30)]
    answers = _gathered(front, log, [*appends, [Event(kind="bad", idempotency_key="x",
                                                      experiment="exp", ts=T0)]])
    assert answers[0] == 1
    assert answers[1] == [True, True]  # the first caller's "dup" is the new one
    assert all(a == [True, False] for a in answers[2:31])
    assert isinstance(answers[31], DataError)  # refused before it was queued
    assert log.transactions == [1, 60]  # the 30 appends queued behind the first: one commit

    async def reads():
        rec = await front.recommendation("exp", "nothing")
        counts = await front.counts("exp")
        frame = await front.read_frame("exp")
        await front.aclose()
        return rec, counts, frame

    rec, counts, frame = asyncio.run(reads())
    assert rec is None and counts["click"] == 1 + 30 + 1 == frame.height
    with pytest.raises(EventLogError, match="closed"):
        log.read_frame()


def test_a_failed_group_commit_fails_its_callers_and_the_writer_goes_on():
    log = GatedLog()
    front = AsyncEventLog(log)
    answers = _gathered(front, log, [[click("a")], [click("full")]])
    assert answers[0] == 1
    assert all(isinstance(a, EventLogError) and "disk full" in str(a) for a in answers[1:])

    async def later():
        return await front.append([click("a")])

    assert asyncio.run(later()) == 1  # "a" was rolled back with the failed commit
    front.close()
    assert log.transactions == [1, 2, 1]


def test_a_group_commit_wakes_each_event_loop_once():
    from sessionrec.experiments.eventlog_async import _settle

    class Loop:  # records call_soon_threadsafe and runs the callback at once
        def __init__(self) -> None:
            self.wakeups = 0

        def call_soon_threadsafe(self, fn, *args) -> None:
            self.wakeups += 1
            fn(*args)

    class Future:
        def __init__(self) -> None:
            self.value = self.error = None

        def done(self) -> bool:
            return self.value is not None or self.error is not None

        def set_result(self, value) -> None:
            self.value = value

        def set_exception(self, error) -> None:
            self.error = error

    a, b = Loop(), Loop()
    futures = [Future() for _ in range(4)]
    batch = [([1], a, futures[0]), ([2, 3], a, futures[1]), ([4], b, futures[2]),
             ([5], a, futures[3])]
    failed = ValueError("x")
    _settle(batch, [([True], None), ([True, False], None), (None, failed), ([False], None)])
    assert (a.wakeups, b.wakeups) == (1, 1)
    assert [f.value for f in futures] == [[True], [True, False], None, [False]]
    assert futures[2].error is failed


# -- processes and crashes ---------------------------------------------------------------------
WORKER = """
import sys
from datetime import UTC, datetime
from sessionrec.experiments.eventlog import Event, open_event_log

url, mode, experiment, prefix, n = sys.argv[1:6]
log = open_event_log(url)
def click(key):
    return Event(kind="click", idempotency_key=key, experiment=experiment, product_ids=["p"],
                 ts=datetime.now(UTC))
print("ready", flush=True)
if mode == "stream":  # one event per append; print each key once the append returned
    for i in range(int(n)):
        log.append([click(f"{prefix}{i}")])
        print(f"{prefix}{i}", flush=True)
else:  # pairs: an own key and a key every worker shares, from a common start
    sys.stdin.readline()
    new = sum(log.append([click(f"{prefix}{i}"), click(f"shared{i}")]) for i in range(int(n)))
    print(new, flush=True)
"""


def _worker(url: str, mode: str, experiment: str, prefix: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, mode, experiment, prefix,
                             str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_two_processes_append_to_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    workers = [_worker(url, "pairs", "exp", f"w{w}-", 40) for w in range(2)]
    assert [w.stdout.readline().strip() for w in workers] == ["ready", "ready"]
    outputs = [w.communicate("go\n", timeout=60)[0].split() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sum(int(out[-1]) for out in outputs) == 2 * 40 + 40
    with open_event_log(url) as log:
        frame = log.read_frame("exp")
    assert frame.height == 120 and frame["idempotency_key"].n_unique() == 120


@DURABLE_BACKENDS
def test_no_acknowledged_event_is_lost_or_doubled_when_the_writer_is_killed(file_url):
    writer = _worker(file_url, "stream", "crash", "e", 10**6)
    assert writer.stdout.readline().strip() == "ready"
    acknowledged = [writer.stdout.readline().strip() for _ in range(40)]
    os.kill(writer.pid, signal.SIGKILL)
    rest = writer.stdout.read()  # whatever it acknowledged before it died
    writer.wait(timeout=10)
    acknowledged += [line for line in rest.split("\n")[:-1] if line]  # skip a torn last line
    with open_event_log(file_url) as log:
        stored = log.read_frame("crash")["idempotency_key"].to_list()
        n = len(acknowledged)
        assert stored[:n] == acknowledged == [f"e{i}" for i in range(n)]
        assert stored in (acknowledged, [*acknowledged, f"e{n}"])  # at most one in flight
        # The restarted writer re-sends from where it had no acknowledgement: nothing doubles.
        assert log.append([Event(kind="click", idempotency_key=f"e{i}", experiment="crash",
                                 product_ids=["p"], ts=T0) for i in range(n - 5, n + 5)]) \
            == 5 - (len(stored) - n)
        assert log.read_frame("crash")["idempotency_key"].to_list() == \
            [f"e{i}" for i in range(n + 5)]


@DURABLE_BACKENDS
def test_a_forked_child_appends_through_connections_of_its_own(file_url):
    with open_event_log(file_url) as log:
        log.append([click("parent-before")])
        pid = os.fork()
        if pid == 0:  # the child: must not touch the parent's connections
            code = 1
            try:
                code = 0 if log.append([click("child")]) == 1 else 1
            finally:
                os._exit(code)
        assert os.waitpid(pid, 0)[1] == 0
        log.append([click("parent-after")])
        assert log.read_frame()["idempotency_key"].to_list() == \
            ["parent-before", "child", "parent-after"]


def test_sqlite_commits_are_fsynced_in_wal_mode(tmp_path):
    import sqlite3

    with open_event_log(f"sqlite:///{tmp_path}/e.db") as log:
        assert log._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- opening ------------------------------------------------------------------------------------
def test_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_event_log("sqlite:///logs/rel.db") as log:
        log.append([click("a")])
    assert (tmp_path / "logs" / "rel.db").is_file()
    with open_event_log(f"sqlite:///{tmp_path}/logs/rel.db") as log:  # absolute: four slashes
        assert log.read_frame()["idempotency_key"].to_list() == ["a"]
    with open_event_log("sqlite://:memory:") as log:
        assert log.append([click("a")]) == 1
    for bad, named in (("mysql://u:secret@db/x", "'mysql'"), ("events.db", "no scheme"),
                       ("sqlite://relative.db", "sqlite:///relative/path.db")):
        with pytest.raises(ConfigError, match=named) as info:
            open_event_log(bad)
        assert "secret" not in str(info.value)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "notes.db").write_text("not a database, just text\n" * 100)
    with pytest.raises(ConfigError, match=r"notes\.db"):
        open_event_log(f"sqlite:///{tmp_path}/notes.db")


def test_a_closed_log_refuses_work():
    log = open_event_log("sqlite://:memory:")
    log.close()
    log.close()
    with pytest.raises(EventLogError, match="closed"):
        log.append([click("a")])


def test_an_unreachable_postgres_is_named_without_its_password():
    pytest.importorskip("psycopg")
    with pytest.raises(EventLogUnavailable) as info:
        open_event_log("postgresql://shop:hunter2@127.0.0.1:1/events")
    message = str(info.value)
    assert "127.0.0.1:1/events" in message and "shop" in message
    assert "hunter2" not in message


def test_a_missing_postgres_database_is_named(postgres_server):
    base = postgres_server.rsplit("/", 1)[0]
    with pytest.raises(EventLogUnavailable, match="no_such_db_here"):
        open_event_log(f"{base}/no_such_db_here")


def test_postgres_append_survives_a_dropped_connection(postgres_url):
    import psycopg

    with open_event_log(postgres_url) as log:
        log.append([click("a")])
        pid = log._idle[0].info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert log.append([click("b"), click("a")]) == 1
        assert log.read_frame()["idempotency_key"].to_list() == ["a", "b"]


def test_a_version_1_sqlite_log_gains_the_placement_column(tmp_path):
    import sqlite3

    from sessionrec.experiments.eventlog_sqlite import _CREATE

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_CREATE.replace("    placement TEXT,\n", ""))
    conn.execute("INSERT INTO experiment_events (kind, idempotency_key, experiment, product_ids,"
                 " ts, received_at, orphan, fallback) VALUES ('click', 'k0', 'exp', '[\"p\"]',"
                 " 0, 0, 0, 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with open_event_log(f"sqlite:///{path}") as log:
        log.append([Event(kind="recommendation", idempotency_key="r1", experiment="exp",
                          recommendation_id="r1", product_ids=("p",), ts=T0,
                          placement="basket")])
        frame = log.read_frame("exp")
    assert frame["placement"].to_list() == [None, "basket"]


def test_a_version_2_sqlite_log_gains_the_model_column_and_rank_rows_keep_it(tmp_path):
    import sqlite3

    from sessionrec.experiments.eventlog_sqlite import _CREATE, LAYOUT_VERSION

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(_CREATE.replace("    model TEXT,\n", ""))
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with open_event_log(f"sqlite:///{path}") as log:
        log.append([Event(kind="recommendation", idempotency_key="r1", experiment="exp",
                          recommendation_id="r1", product_ids=("b", "a"), ts=T0,
                          placement="rank", model="alpine")])
        frame = log.read_frame("exp")
        assert log.recommendation("exp", "r1").model == "alpine"
    assert frame.select("placement", "model").rows() == [("rank", "alpine")]
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == LAYOUT_VERSION == 3


def test_a_placement_outside_the_known_ones_is_refused(tmp_path):
    with open_event_log(f"sqlite:///{tmp_path / 'e.db'}") as log, pytest.raises(
            DataError, match="placement"):
        log.append([Event(kind="recommendation", idempotency_key="r1", experiment="exp",
                          product_ids=("p",), ts=T0, placement="sidebar")])


def test_switch_to_wal_waits_out_another_opener(tmp_path):
    # Two processes opening a new file at once: the second's journal-mode switch meets the
    # first's lock and SQLite answers "database is locked" without calling the busy handler.
    import sqlite3
    import threading

    from sessionrec.experiments.eventlog_sqlite import _set_wal

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(opener, 0.05)
    threading.Timer(0.2, lambda: holder.execute("COMMIT")).start()
    _set_wal(opener, 5.0)
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
