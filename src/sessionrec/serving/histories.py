"""Behaviour histories of users for candidate re-ranking: in process or in Redis.

Per user and behaviour (``click``, ``skip`` = shown but not clicked, ``like``, ``follow``) a
time-ordered list of (item index, time µs), capped at the model's ``max_len`` most recent
events. The memory store is bounded (LRU over users); the Redis store keeps one list per user
and behaviour (``RPUSH`` + ``LTRIM``, expiring after ``ttl_s`` without an event), so several API
replicas share the histories.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Protocol

import numpy as np

from sessionrec.batching.behaviours import BEHAVIOURS

History = dict[str, tuple[np.ndarray, np.ndarray]]


def empty_history() -> History:
    return {b: (np.zeros(0, np.int64), np.zeros(0, np.int64)) for b in BEHAVIOURS}


class HistoryStore(Protocol):
    async def append(self, user: str, behaviour: str, item: int, ts_us: int) -> None: ...

    async def get(self, user: str) -> History: ...

    async def close(self) -> None: ...

    def describe(self) -> str: ...


class MemoryHistories:
    """In-process histories, at most ``max_users`` users (least recently used leave first)."""

    def __init__(self, max_len: int, max_users: int = 1_000_000) -> None:
        self.max_len, self.max_users = max_len, max_users
        self._users: OrderedDict[str, dict[str, deque]] = OrderedDict()

    async def append(self, user: str, behaviour: str, item: int, ts_us: int) -> None:
        rec = self._users.get(user)
        if rec is None:
            rec = {b: deque(maxlen=self.max_len) for b in BEHAVIOURS}
            self._users[user] = rec
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)
        self._users.move_to_end(user)
        rec[behaviour].append((item, ts_us))

    async def get(self, user: str) -> History:
        rec = self._users.get(user)
        if rec is None:
            return empty_history()
        return {b: (np.array([i for i, _ in q], dtype=np.int64),
                    np.array([t for _, t in q], dtype=np.int64)) for b, q in rec.items()}

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return f"memory ({len(self._users):,} users)"


class RedisHistories:
    """Histories in Redis lists ``{prefix}hist:{user}:{behaviour}`` of ``item:ts`` strings."""

    def __init__(self, url: str, max_len: int, prefix: str = "sessionrec:",
                 ttl_s: float = 90 * 86400.0, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self.url, self.max_len, self.prefix, self.ttl_s = url, max_len, prefix, ttl_s
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s)

    def _key(self, user: str, behaviour: str) -> str:
        return f"{self.prefix}hist:{user}:{behaviour}"

    async def append(self, user: str, behaviour: str, item: int, ts_us: int) -> None:
        key = self._key(user, behaviour)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, f"{item}:{ts_us}")
            pipe.ltrim(key, -self.max_len, -1)
            pipe.expire(key, int(self.ttl_s))
            await pipe.execute()

    async def get(self, user: str) -> History:
        async with self.client.pipeline(transaction=False) as pipe:
            for b in BEHAVIOURS:
                pipe.lrange(self._key(user, b), 0, -1)
            lists = await pipe.execute()
        out = {}
        for b, values in zip(BEHAVIOURS, lists, strict=True):
            pairs = [v.decode().split(":") for v in values]
            out[b] = (np.array([int(i) for i, _ in pairs], dtype=np.int64),
                      np.array([int(t) for _, t in pairs], dtype=np.int64))
        return out

    async def close(self) -> None:
        await self.client.aclose()

    def describe(self) -> str:
        return f"redis {self.url} (prefix {self.prefix!r})"


def open_histories(url: str, max_len: int, prefix: str, max_users: int) -> HistoryStore:
    """``memory`` or ``redis://...``."""
    if url == "memory":
        return MemoryHistories(max_len, max_users)
    return RedisHistories(url, max_len, prefix)
