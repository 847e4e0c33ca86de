"""Did a live session lose its state? (``state_reset: true`` in the answer)

A session whose record is missing is normally new. It is a lost one when the state store lost
its contents (a Redis server restarted empty) while the session was live. The store keeps an
*epoch* (a random id in a key without TTL, written when missing): a changed epoch means the
contents are gone. Each worker remembers the sessions it wrote (bounded LRU, with the epoch
of the write); when it sees the epoch change it publishes those still live into the store's
*lost* set (kept one session TTL), so that whichever worker gets the session's next click
answers ``state_reset: true``. Workers look at the epoch on every click of a session without
a record and at every sweep (``sweep_interval_s``): a session whose only worker has not
looked yet, and whose next click goes to another worker, may start over unflagged.

The in-process store lives as long as the process (and this memory with it): its epoch
never changes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from sessionrec.serving.store import SessionRead, StateStore

log = logging.getLogger(__name__)

REMEMBERED = 100_000  # live sessions a worker remembers (about 10 MB)


class Continuity:
    """The sessions this worker wrote, and whether the store has lost them since."""

    def __init__(self, store: StateStore, session_ttl_s: float, size: int = REMEMBERED,
                 clock=time.time) -> None:
        self.store = store
        self.session_ttl_s = session_ttl_s
        self.size = size
        self.clock = clock
        self.epoch: str | None = None
        self.live: OrderedDict[str, tuple[float, str]] = OrderedDict()  # id -> (time, epoch)

    async def check_epoch(self) -> str:
        """The store's epoch; on a change, publish the remembered live sessions as lost."""
        epoch = await self.store.epoch()
        await self._saw_epoch(epoch)
        return epoch

    async def _saw_epoch(self, epoch: str) -> None:
        if self.epoch is not None and epoch != self.epoch:
            await self._publish(self.epoch)
        self.epoch = epoch

    async def _publish(self, old: str) -> None:
        now = self.clock()
        lost = [sid for sid, (t, e) in self.live.items()
                if e == old and t + self.session_ttl_s >= now]
        log.warning("the state store lost its contents (%s): %d live sessions of this worker "
                    "start over, answered with state_reset", self.store.describe(), len(lost))
        if lost:
            await self.store.mark_lost(lost)

    def wrote(self, session_id: str) -> None:
        self.live[session_id] = (self.clock(), self.epoch or "")
        self.live.move_to_end(session_id)
        while len(self.live) > self.size:
            self.live.popitem(last=False)

    def ended(self, session_id: str) -> None:
        self.live.pop(session_id, None)

    async def lost(self, session_id: str) -> bool:
        """Whether a session without a record was live before the store lost its contents."""
        epoch = await self.check_epoch()
        entry = self.live.get(session_id)
        if entry is None:
            return await self.store.was_lost(session_id)
        return self._lost_entry(entry, epoch)

    async def lost_after_read(self, session_id: str, read: SessionRead) -> bool:
        """:meth:`lost` from a read without a record that brought the epoch and the lost
        mark along (:meth:`StateStore.read_session`): no further store round trip unless the
        epoch changed."""
        await self._saw_epoch(read.epoch or "")
        entry = self.live.get(session_id)
        if entry is None:
            return read.marked_lost
        return self._lost_entry(entry, self.epoch or "")

    def _lost_entry(self, entry: tuple[float, str], epoch: str) -> bool:
        # ended elsewhere (same epoch), or lost with the store's contents
        return entry[1] != epoch and entry[0] + self.session_ttl_s >= self.clock()
