"""The experiment event log: one append-only, durable record of everything an experiment saw.

Two backends behind one interface (:class:`EventLog`), chosen by URL in :func:`open_event_log`:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite://:memory:`` —
  embedded SQLite in WAL mode with ``synchronous=FULL`` (the default; several processes on one
  machine may share a file), see :mod:`sessionrec.experiments.eventlog_sqlite`;
* ``postgresql://user@host:port/db`` (or ``postgres://``) — a PostgreSQL server, for several
  API replicas, see :mod:`sessionrec.experiments.eventlog_postgres`.

Guarantees of both: :meth:`EventLog.append` validates every event first and writes all of
them in one transaction (nothing half-written), and returns only once that transaction is
durable, so an acknowledged event survives a crash of the writer. An event whose
``(experiment, idempotency_key)`` is already in the log is ignored, not an error: a retried
request is never counted twice. ``seq`` is assigned by the log and increases in append order;
it may have gaps (PostgreSQL spends sequence numbers on ignored duplicates).

Async callers (the API) use :class:`~sessionrec.experiments.eventlog_async.AsyncEventLog`:
it validates in the caller, commits the appends of many concurrent requests together from one
writer thread (group commit: one fsync for the lot) and answers each caller only after its
events are committed. Reads go through ``asyncio.to_thread``. Nothing blocks the event loop::

    from sessionrec.experiments.eventlog_async import AsyncEventLog

    events = AsyncEventLog(open_event_log("sqlite:///runs/exp/events.db"))   # at start-up
    rec = await events.recommendation("exp", rid)                            # per request
    new = await events.append([Event(kind="click", idempotency_key=f"click:{key}", ...)])
    await events.aclose()                                                    # at shutdown

Synchronous code (simulator, report) uses the :class:`EventLog` directly (a context manager).
Product ids are strings (``str(product_id)``); timestamps are timezone-aware datetimes.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl

from sessionrec.errors import ConfigError, DataError, SessionRecError

EVENT_KINDS = ("assignment", "recommendation", "impression", "click", "purchase")
PLACEMENTS = ("product_page", "basket", "home")  # where a recommendation was shown
RANK_PLACEMENT = "rank"  # a POST /v1/rank answer: the shop's candidates, re-ranked
LOGGED_PLACEMENTS = (*PLACEMENTS, RANK_PLACEMENT)  # the placements a row may carry

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "kind": pl.Utf8(),
    "idempotency_key": pl.Utf8(),
    "experiment": pl.Utf8(),
    "variant": pl.Utf8(),
    "unit_id": pl.Utf8(),
    "user_id": pl.Utf8(),
    "session_id": pl.Utf8(),
    "recommendation_id": pl.Utf8(),
    "product_ids": pl.List(pl.Utf8()),
    "prices": pl.List(pl.Float64()),
    "order_id": pl.Utf8(),
    "ts": pl.Datetime("us", "UTC"),
    "received_at": pl.Datetime("us", "UTC"),
    "orphan": pl.Boolean(),
    "fallback": pl.Boolean(),
    "placement": pl.Utf8(),  # of a recommendation: product_page, basket, home or rank
    "model": pl.Utf8(),  # of a rank recommendation: the model that ordered it (else null)
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONAL_TEXT = ("variant", "unit_id", "user_id", "session_id", "recommendation_id", "order_id",
                  "model")


class EventLogError(SessionRecError, RuntimeError):
    """The event log could not do what was asked (closed, storage failed, locked too long)."""


class EventLogUnavailable(EventLogError):
    """The event log's database cannot be reached (server down, wrong host or database)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One logged event: the columns of :data:`EVENT_SCHEMA` except ``seq``.

    ``ts`` and ``received_at`` are timezone-aware datetimes; ``received_at`` is filled by the
    log (the append time) when None. Lists given for ``product_ids`` / ``prices`` are stored
    as tuples. Values are checked by :func:`validate_events` (every append calls it).
    """

    kind: str
    idempotency_key: str
    experiment: str
    variant: str | None = None
    unit_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    recommendation_id: str | None = None
    product_ids: tuple[str, ...] = ()
    prices: tuple[float | None, ...] | None = None
    order_id: str | None = None
    ts: datetime
    received_at: datetime | None = None
    orphan: bool = False
    fallback: bool = False
    placement: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.product_ids, list):
            object.__setattr__(self, "product_ids", tuple(self.product_ids))
        if isinstance(self.prices, list):
            object.__setattr__(self, "prices", tuple(self.prices))


def validate_events(events: Sequence[Event]) -> None:
    """Raise :class:`DataError` naming the event (row) and field of the first invalid value."""
    for row, event in enumerate(events):
        if not isinstance(event, Event):
            raise DataError(f"expected an Event, got {type(event).__name__}", row=row)
        _validate(event, row)


def _validate(e: Event, row: int) -> None:
    def bad(field: str, what: str) -> DataError:
        return DataError(f"invalid event: {field} {what}", column=field, row=row)

    if e.kind not in EVENT_KINDS:
        raise bad("kind", f"is {e.kind!r}, expected one of {', '.join(EVENT_KINDS)}")
    for field in ("idempotency_key", "experiment"):
        value = getattr(e, field)
        if not isinstance(value, str) or not value or not _storable(value):
            raise bad(field, f"must be a non-empty UTF-8 string without NUL, got {value!r}")
    for field in _OPTIONAL_TEXT:
        value = getattr(e, field)
        if value is not None and not (isinstance(value, str) and _storable(value)):
            raise bad(field, f"must be a UTF-8 string without NUL or None, got {value!r}")
    if not isinstance(e.product_ids, tuple) or not all(isinstance(p, str) and _storable(p)
                                                        for p in e.product_ids):
        raise bad("product_ids", f"must be a list of UTF-8 strings without NUL, "
                                 f"got {e.product_ids!r}")
    if e.kind == "click" and len(e.product_ids) != 1:
        raise bad("product_ids", f"of a click must name exactly one product, "
                                 f"got {len(e.product_ids)}")
    if e.prices is not None:
        if not isinstance(e.prices, tuple) or len(e.prices) != len(e.product_ids):
            raise bad("prices", f"must be a list parallel to product_ids "
                                f"({len(e.product_ids)} values), got {e.prices!r}")
        for price in e.prices:
            if price is not None and (isinstance(price, bool)
                                      or not isinstance(price, numbers.Real)
                                      or not math.isfinite(price)):
                raise bad("prices", f"must hold finite numbers or None, got {price!r}")
    for field in ("ts", "received_at"):
        value = getattr(e, field)
        if value is None and field == "received_at":
            continue
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise bad(field, f"must be a timezone-aware datetime, got {value!r}")
    if e.placement is not None and e.placement not in LOGGED_PLACEMENTS:
        raise bad("placement", f"is {e.placement!r}, expected one of "
                               f"{', '.join(LOGGED_PLACEMENTS)} or None")
    for field in ("orphan", "fallback"):
        if not isinstance(getattr(e, field), bool):
            raise bad(field, f"must be a bool, got {getattr(e, field)!r}")


def _storable(text: str) -> bool:
    """Whether both databases store ``text`` as given: PostgreSQL refuses NUL characters and
    neither encodes lone surrogates."""
    if text.isascii():
        return "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def to_micros(ts: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an aware datetime (exact integer arithmetic)."""
    return (ts - _EPOCH) // _MICROSECOND


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def event_from_row(row: Sequence) -> Event:
    """An :class:`Event` from a stored row in :data:`EVENT_SCHEMA` column order, with the two
    timestamps as integer microseconds and the lists already decoded."""
    (_seq, kind, key, experiment, variant, unit_id, user_id, session_id, rid, product_ids,
     prices, order_id, ts, received_at, orphan, fallback, placement, model) = row
    return Event(kind=kind, idempotency_key=key, experiment=experiment, variant=variant,
                 unit_id=unit_id, user_id=user_id, session_id=session_id,
                 recommendation_id=rid, product_ids=tuple(product_ids),
                 prices=None if prices is None else tuple(prices), order_id=order_id,
                 ts=from_micros(ts), received_at=from_micros(received_at),
                 orphan=bool(orphan), fallback=bool(fallback), placement=placement,
                 model=model)


def frame_from_rows(rows: Sequence[Sequence], *, json_lists: bool) -> pl.DataFrame:
    """The canonical frame from stored rows (as for :func:`event_from_row`); with
    ``json_lists`` the two list columns are JSON text, decoded here column-wise."""
    raw = dict(EVENT_SCHEMA)
    raw["ts"] = raw["received_at"] = pl.Int64()
    if json_lists:
        raw["product_ids"] = raw["prices"] = pl.Utf8()
    df = pl.DataFrame(rows, schema=raw, orient="row")
    fixes = [pl.from_epoch(c, time_unit="us").dt.replace_time_zone("UTC")
             for c in ("ts", "received_at")]
    if json_lists:
        fixes += [pl.col("product_ids").str.json_decode(EVENT_SCHEMA["product_ids"]),
                  pl.col("prices").str.json_decode(EVENT_SCHEMA["prices"])]
    return df.with_columns(fixes).cast(EVENT_SCHEMA)


class EventLog(ABC):
    """An append-only experiment event log (see the module docstring); a context manager.

    Subclasses implement :meth:`_insert` and the read methods; thread-safe. ``validate``
    checks events before any write (the event archive's logs check their own kind of event).
    """

    validate = staticmethod(validate_events)

    def append(self, events: Iterable[Event]) -> int:
        """Validate, then durably write ``events`` in one transaction; returns how many were
        new (events whose ``(experiment, idempotency_key)`` was already logged are skipped)."""
        return sum(self.append_each(events))

    def append_each(self, events: Iterable[Event]) -> list[bool]:
        """Like :meth:`append`, but returns for each event whether it was new (the first of
        several equal keys in one call counts as new)."""
        events = list(events)
        self.validate(events)
        if not events:
            return []
        return self._insert(events, to_micros(datetime.now(UTC)))

    @abstractmethod
    def _insert(self, events: list[Event], now_us: int) -> list[bool]:
        """Write validated events in one durable transaction; ``now_us`` fills received_at."""

    @abstractmethod
    def read_frame(self, experiment: str | None = None) -> pl.DataFrame:
        """Every event (of ``experiment``, or of all) as a frame with :data:`EVENT_SCHEMA`,
        ordered by ``seq``."""

    @abstractmethod
    def counts(self, experiment: str) -> dict[str, int]:
        """Rows per kind of ``experiment``: every kind of :data:`EVENT_KINDS`, zeros included."""

    @abstractmethod
    def recommendation(self, experiment: str, recommendation_id: str) -> Event | None:
        """The ``recommendation`` event with this id (indexed lookup), or None."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; further calls raise :class:`EventLogError`."""

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_log_url(url: str, what: str = "event log",
                  example: str = "path.db") -> tuple[Literal["sqlite", "postgresql"], str]:
    """``("sqlite", path or ":memory:")`` or ``("postgresql", url)`` for a log URL (the event
    log's or the archive's, ``what`` in messages). Raises :class:`ConfigError` otherwise."""
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep:
        if rest in (":memory:", "/:memory:"):
            return "sqlite", ":memory:"
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(f"{what} URL {url!r}: expected sqlite:///relative/path.db, "
                              "sqlite:////absolute/path.db or sqlite://:memory:")
        return "sqlite", rest[1:]
    if scheme in ("postgresql", "postgres") and sep:
        return "postgresql", url
    # The URL itself is not echoed: it may hold a password.
    named = f"scheme {scheme!r}" if sep else "no scheme"
    raise ConfigError(f"{what} URL has {named}; supported: sqlite:///{example}, "
                      "sqlite://:memory:, postgresql://user@host:port/db")


def open_event_log(url: str) -> EventLog:
    """Open (creating the table if needed) the event log at ``url``; see the module docstring
    for the URL forms. Raises :class:`ConfigError` for an unusable URL and
    :class:`EventLogUnavailable` when a PostgreSQL server cannot be reached."""
    kind, where = parse_log_url(url)
    if kind == "sqlite":
        from sessionrec.experiments.eventlog_sqlite import SQLiteEventLog

        return SQLiteEventLog(where)
    from sessionrec.experiments.eventlog_postgres import PostgresEventLog

    return PostgresEventLog(where)
