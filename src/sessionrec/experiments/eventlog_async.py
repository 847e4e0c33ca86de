"""Group commit for asyncio callers of an :class:`~sessionrec.experiments.eventlog.EventLog`.

Appending one event per transaction costs one fsync (SQLite) or one synchronous commit
(PostgreSQL) per request. :class:`AsyncEventLog` lets concurrent requests share them: each
request waits only for the commit that holds its events, and the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl

from sessionrec.errors import ConfigError
from sessionrec.experiments.eventlog import (
    Event,
    EventLog,
    EventLogError,
    to_micros,
)

logger = logging.getLogger(__name__)


class AsyncEventLog:
    """Group-commit front of an :class:`EventLog` for asyncio code (the API).

    ``await append(events)`` validates at once (a :class:`DataError` is the caller's alone),
    hands the events to one writer thread and returns once they are committed. The writer
    takes everything queued meanwhile (up to ``max_batch`` events) into one transaction, so
    under load many requests share one commit (and, should the storage fail, its error). A
    cancelled caller's events are still written (the log never loses what it accepted).
    Reads run in ``asyncio.to_thread``. ``aclose()`` (or ``close()``) drains the queue, then
    closes the wrapped log.
    """

    def __init__(self, log: EventLog, *, max_batch: int = 1024) -> None:
        if max_batch < 1:
            raise ConfigError(f"max_batch must be at least 1, got {max_batch}")
        self.log = log
        self.max_batch = int(max_batch)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._closed = False

    async def append(self, events: Iterable[Event]) -> int:
        """How many of ``events`` were new, once they are durable."""
        return sum(await self.append_each(events))

    async def append_each(self, events: Iterable[Event]) -> list[bool]:
        """For each event whether it was new, once they are durable."""
        events = list(events)
        self.log.validate(events)
        if not events:
            return []
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        with self._lock:
            if self._closed:
                raise EventLogError("the event log is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="eventlog-writer",
                                                daemon=True)
                self._writer.start()
            self._queue.put((events, loop, done))
        return await done

    async def recommendation(self, experiment: str, recommendation_id: str) -> Event | None:
        return await asyncio.to_thread(self.log.recommendation, experiment, recommendation_id)

    async def counts(self, experiment: str) -> dict[str, int]:
        return await asyncio.to_thread(self.log.counts, experiment)

    async def read_frame(self, experiment: str | None = None) -> pl.DataFrame:
        return await asyncio.to_thread(self.log.read_frame, experiment)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Write what is queued, stop the writer and close the wrapped log (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer = self._writer
            if writer is not None:
                self._queue.put(None)
        if writer is not None:
            writer.join()
        self.log.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            batch, size = [item], len(item[0])
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0])
            self._commit(batch)

    def _commit(self, batch: list) -> None:
        # Validation already refused every value a database could reject, so a failure here
        # is the storage's (down, locked, full) and would fail each append alone as well.
        try:
            flags = self.log._insert([e for events, _, _ in batch for e in events],
                                     to_micros(datetime.now(UTC)))
        except Exception as err:
            if len(batch) > 1:
                logger.warning("event log: a group commit of %d appends failed: %s",
                               len(batch), err)
            _settle(batch, [(None, err)] * len(batch))
            return
        outcomes, start = [], 0
        for events, _, _ in batch:
            outcomes.append((flags[start:start + len(events)], None))
            start += len(events)
        _settle(batch, outcomes)


def _settle(batch: list, outcomes: list) -> None:
    """Resolve each append's future with its (result, exception), one wake-up per event loop.

    A group commit answers many appends at once; waking their loop once (not once per
    append) keeps the writer's cost per commit flat while the loop is busy serving.
    """
    by_loop: dict = {}
    for (_, loop, done), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((done, *outcome))

    def resolve(items: list) -> None:
        for done, result, exception in items:
            if done.done():  # the caller was cancelled; its events are written all the same
                continue
            if exception is not None:
                done.set_exception(exception)
            else:
                done.set_result(result)

    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(resolve, items)
        except RuntimeError:  # the caller's event loop is closed: nobody is waiting any more
            logger.debug("event log: %d appends were committed after their event loop closed",
                         len(items))
