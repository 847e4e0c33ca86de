"""The API's side of the event archive (:mod:`sessionrec.archive`): record before answering.

With ``--archive URL`` (``SESSIONREC_ARCHIVE``) every event the API receives is appended to the
archive, durably, before its answer leaves: the views of ``POST /v1/events`` (with the
request's ``User-Agent``), the experiment's impressions, clicks and purchases, and the events
of ``POST /v1/events:batch`` (a shop sending from its own queue, each event with its own
idempotency key; they are archived only, the live sessions are not moved by them).

A view is answered even when the archive fails (shop pages never get a 5xx); its answer then
carries the header ``Sessionrec-Archived: false`` (``true`` once it is durable) and the
failure is counted (``sessionrec_archive_events{result="error"}``). A batch is answered event
by event: ``accepted``, ``duplicate`` (the key was archived before) or ``rejected`` with the
field and why; while the archive is down the whole batch gets 503 and nothing is recorded
(retry with the same keys).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from sessionrec.archive.record import ArchiveEvent
from sessionrec.experiments.eventlog_async import AsyncEventLog

log = logging.getLogger(__name__)

ARCHIVED_HEADER = "Sessionrec-Archived"


class ArchiveDown(Exception):
    """The archive failed or timed out: nothing of this append was acknowledged."""


class Archiver:
    """Durable, group-committed appends to the archive, with counters."""

    def __init__(self, events: AsyncEventLog, counter: Counter, timeout_s: float,
                 own: bool = True) -> None:
        self.events = events
        self.timeout_s = timeout_s
        self.own = own
        self.counter = counter

    async def append(self, events: list[ArchiveEvent]) -> list[bool]:
        """For each event whether it was new, once durable; raises :class:`ArchiveDown`."""
        try:
            async with asyncio.timeout(self.timeout_s):  # no extra task, unlike wait_for
                flags = await self.events.append_each(events)
        except Exception as err:
            for e in events:
                self.counter.labels(e.kind, "error").inc()
            raise ArchiveDown(f"archive append failed: {type(err).__name__}: {err}") from err
        for e, new in zip(events, flags, strict=True):
            self.counter.labels(e.kind, "new" if new else "duplicate").inc()
        return flags

    async def record(self, events: list[ArchiveEvent]) -> bool:
        """Append; False (logged, counted) instead of raising when the archive fails."""
        try:
            await self.append(events)
        except ArchiveDown as err:
            log.warning("%s; the answer goes out unarchived", err)
            return False
        return True

    async def close(self) -> None:
        if self.own:
            await self.events.aclose()


def now_or(timestamp: float | None) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else datetime.now(UTC)


def text(value) -> str | None:
    return None if value is None else str(value)


def view_event(session_id: str, product_id, user_id: str | None, device_id: str | None,
               timestamp: float | None, user_agent: str | None,
               placement: str | None = "product_page", kind: str = "view") -> ArchiveEvent:
    """The archive row of a view (or basket add) posted to ``/v1/events``."""
    return ArchiveEvent(kind=kind, idempotency_key=f"{kind}:{uuid.uuid4().hex}",
                        session_id=session_id, user_id=user_id, device_id=device_id,
                        product_ids=(str(product_id),), placement=placement,
                        user_agent=user_agent, ts=now_or(timestamp))


def archive_counter(metrics) -> Counter:
    """The archive's counter in the app's registry (registered once per app)."""
    counter = getattr(metrics, "archive_events", None)
    if counter is None:
        registry: CollectorRegistry = metrics.registry
        counter = Counter("sessionrec_archive_events", "Events appended to the archive",
                          ["kind", "result"], registry=registry)
        metrics.archive_events = counter
    return counter


def open_archiver(url: str, metrics, timeout_s: float, given=None) -> Archiver:
    """An :class:`Archiver` on the archive at ``url`` (or on ``given``, left open)."""
    from sessionrec.archive.log import open_archive

    log_ = given if given is not None else open_archive(url)
    if not isinstance(log_, AsyncEventLog):
        log_ = AsyncEventLog(log_)
    return Archiver(log_, archive_counter(metrics), timeout_s, own=given is None)
