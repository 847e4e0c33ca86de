"""The state store: per-session and per-user records behind one interface.

Every write is a compare-and-set on a version number: ``put_*(id, expected, record)``
stores the record only if the stored version is still ``expected`` (0: absent) and returns
the new version, or ``None`` when another writer got there first; the caller then reads again
and redoes its update. So concurrent events of one session, from one or many API workers, never
lose an update.

Two implementations:

* :class:`MemoryStore` (here): in-process, LRU-bounded, for a single API worker;
* :class:`~sessionrec.serving.redis_store.RedisStore`: a Redis server shared by any number of
  workers (Lua compare-and-set, binary records, TTLs).

Sessions idle for longer than ``session_ttl_s`` have ended. Those of users must be folded
into the user state (HGRU4Rec) before they disappear, so the store hands them out once through
:meth:`StateStore.take_expired` (and :meth:`StateStore.take_session` for explicit ends).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.serving.records import SessionRecord, UserRecord


class StoreUnavailable(SessionRecError):
    """The state store cannot be reached (connection refused, timeout, server error)."""


T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A stored record and its version; ``record`` is None when the stored value cannot be
    read (corrupt or another format): the caller overwrites it at this version."""

    version: int
    record: T | None


@dataclass(frozen=True)
class SessionRead:
    """A session's record, and for a session without one what
    :mod:`~sessionrec.serving.continuity` needs to tell a new session from a lost one."""

    got: Versioned[SessionRecord] | None
    epoch: str | None = None  # the store's epoch (read only when ``got`` is None)
    marked_lost: bool = False  # named by :meth:`StateStore.mark_lost` (likewise)


class StateStore(ABC):
    """Session and user records with versioned compare-and-set writes."""

    url: str = ""

    def __init__(self, session_ttl_s: float, user_ttl_s: float) -> None:
        if session_ttl_s <= 0 or user_ttl_s <= 0:
            raise ConfigError(f"store TTLs must be positive, got session_ttl_s={session_ttl_s}, "
                              f"user_ttl_s={user_ttl_s}")
        self.session_ttl_s = float(session_ttl_s)
        self.user_ttl_s = float(user_ttl_s)

    @abstractmethod
    async def get_session(self, session_id: str) -> Versioned[SessionRecord] | None:
        """The session's record and version, ``None`` when there is none."""

    @abstractmethod
    async def put_session(self, session_id: str, expected: int, record: SessionRecord,
                          track_idle: bool = False) -> int | None:
        """Store ``record`` if the version is still ``expected`` (0: absent); new version or None.

        ``track_idle``: the session must be handed to :meth:`take_expired` once idle (it has a
        user whose state it will advance); otherwise it may simply expire.
        """

    @abstractmethod
    async def take_session(self, session_id: str) -> SessionRecord | None:
        """Remove the session and return its record (exactly one caller gets it)."""

    @abstractmethod
    async def take_expired(self, now: float, limit: int = 100) -> list[tuple[str, SessionRecord]]:
        """Remove and return tracked sessions idle since before ``now - session_ttl_s``."""

    @abstractmethod
    async def get_user(self, user_id: str) -> Versioned[UserRecord] | None:
        """The user's record and version, ``None`` when there is none."""

    @abstractmethod
    async def put_user(self, user_id: str, expected: int, record: UserRecord) -> int | None:
        """Compare-and-set of a user record, as :meth:`put_session`."""

    @abstractmethod
    async def get_link(self, device_id: str) -> str | None:
        """The last user who logged in on ``device_id`` (LastLoggedInUserId), if known."""

    @abstractmethod
    async def put_link(self, device_id: str, user_id: str) -> None:
        """Remember ``user_id`` as the last user of ``device_id`` (kept ``user_ttl_s``)."""

    @abstractmethod
    def namespace(self, name: str) -> StateStore:
        """A store of the same kind and bounds whose sessions and users are separate from this
        one's (an experiment's variants never share a session state); links stay shared."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the store cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    def describe(self) -> str:
        return self.url

    # -- continuity (see sessionrec.serving.continuity) ----------------------------------------
    async def epoch(self) -> str:
        """An id of the store's contents that changes when they are lost (a server restarted
        empty). The in-process store lives as long as the process: a constant."""
        return "process"

    async def mark_lost(self, session_ids: list[str]) -> None:
        """Remember (one session TTL) that these sessions were live when the contents went."""
        return None

    async def was_lost(self, session_id: str) -> bool:
        """Whether :meth:`mark_lost` named this session (within the session TTL)."""
        return False

    async def read_session(self, session_id: str) -> SessionRead:
        """:meth:`get_session`, with :meth:`epoch` and :meth:`was_lost` when there is no
        record (the Redis store reads all three in one round trip)."""
        got = await self.get_session(session_id)
        if got is not None:
            return SessionRead(got)
        return SessionRead(None, await self.epoch(), await self.was_lost(session_id))


class MemoryStore(StateStore):
    """In-process store: dicts in LRU order, bounded by ``max_sessions`` / ``max_users``.

    Only correct with a single API worker (each worker process would have its own sessions).
    Sessions pushed out by the LRU bound count as ended: tracked ones are handed out by
    :meth:`take_expired` like idle ones, so their users' states still advance.
    """

    url = "memory"

    def __init__(self, session_ttl_s: float = 1800.0, user_ttl_s: float = 90 * 86400.0,
                 max_sessions: int = 1_000_000, max_users: int = 1_000_000,
                 clock=time.time) -> None:
        super().__init__(session_ttl_s, user_ttl_s)
        self.clock = clock
        if max_sessions < 1 or max_users < 1:
            raise ConfigError(f"max_sessions and max_users must be at least 1, got "
                              f"{max_sessions} and {max_users}")
        self.max_sessions = int(max_sessions)
        self.max_users = int(max_users)
        # id -> (version, record, track_idle); least recently written first.
        self._sessions: OrderedDict[str, tuple[int, SessionRecord, bool]] = OrderedDict()
        self._users: OrderedDict[str, tuple[int, UserRecord]] = OrderedDict()
        self._evicted: list[tuple[str, SessionRecord]] = []
        # device id -> (user id, written at); bounded like users. Shared with namespaces.
        self._links: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def _live(self, updated_at: float, ttl: float, now: float) -> bool:
        return updated_at + ttl >= now

    async def get_session(self, session_id: str) -> Versioned[SessionRecord] | None:
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        version, record, track = entry
        if not track and not self._live(record.updated_at, self.session_ttl_s, self.clock()):
            del self._sessions[session_id]  # expired and nobody needs it any more
            return None
        return Versioned(version, record)

    async def put_session(self, session_id: str, expected: int, record: SessionRecord,
                          track_idle: bool = False) -> int | None:
        entry = self._sessions.get(session_id)
        if (entry[0] if entry else 0) != expected:
            return None
        version = expected + 1
        self._sessions[session_id] = (version, record, track_idle)
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > self.max_sessions:
            old_id, (_, old, old_track) = self._sessions.popitem(last=False)
            if old_track:
                self._evicted.append((old_id, old))
        return version

    async def take_session(self, session_id: str) -> SessionRecord | None:
        entry = self._sessions.pop(session_id, None)
        return None if entry is None else entry[1]

    async def take_expired(self, now: float, limit: int = 100) -> list[tuple[str, SessionRecord]]:
        out = self._evicted[:limit]
        del self._evicted[:limit]
        # Least recently written first: stop at the first session that is still live.
        while self._sessions and len(out) < limit:
            session_id, (_, record, track) = next(iter(self._sessions.items()))
            if self._live(record.updated_at, self.session_ttl_s, now):
                break
            del self._sessions[session_id]
            if track:
                out.append((session_id, record))
        return out

    async def get_user(self, user_id: str) -> Versioned[UserRecord] | None:
        entry = self._users.get(user_id)
        if entry is None:
            return None
        if not self._live(entry[1].updated_at, self.user_ttl_s, self.clock()):
            del self._users[user_id]
            return None
        return Versioned(*entry)

    async def put_user(self, user_id: str, expected: int, record: UserRecord) -> int | None:
        entry = self._users.get(user_id)
        if (entry[0] if entry else 0) != expected:
            return None
        self._users[user_id] = (expected + 1, record)
        self._users.move_to_end(user_id)
        while len(self._users) > self.max_users:
            self._users.popitem(last=False)
        return expected + 1

    async def get_link(self, device_id: str) -> str | None:
        entry = self._links.get(device_id)
        if entry is None:
            return None
        if not self._live(entry[1], self.user_ttl_s, self.clock()):
            del self._links[device_id]
            return None
        return entry[0]

    async def put_link(self, device_id: str, user_id: str) -> None:
        self._links[device_id] = (user_id, self.clock())
        self._links.move_to_end(device_id)
        while len(self._links) > self.max_users:
            self._links.popitem(last=False)

    def namespace(self, name: str) -> MemoryStore:
        store = MemoryStore(self.session_ttl_s, self.user_ttl_s, self.max_sessions,
                            self.max_users, self.clock)
        store._links = self._links
        return store

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return (f"memory ({len(self._sessions):,}/{self.max_sessions:,} sessions, "
                f"{len(self._users):,}/{self.max_users:,} users)")


def open_store(url: str, session_ttl_s: float, user_ttl_s: float, max_sessions: int = 1_000_000,
               max_users: int = 1_000_000, timeout_s: float = 0.25,
               prefix: str = "sessionrec:") -> StateStore:
    """``memory`` -> :class:`MemoryStore`; ``redis://host:port/db`` -> :class:`RedisStore`."""
    if url == "memory":
        return MemoryStore(session_ttl_s, user_ttl_s, max_sessions, max_users)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from sessionrec.serving.redis_store import RedisStore

        return RedisStore(url, session_ttl_s, user_ttl_s, timeout_s=timeout_s, prefix=prefix)
    raise ConfigError(f"store: unknown store {url!r}; use 'memory' or a redis:// URL "
                      "(e.g. redis://localhost:6379/0)")
