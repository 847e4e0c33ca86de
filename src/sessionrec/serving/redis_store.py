"""The Redis state store: records shared by every API worker, compare-and-set in Lua.

Layout (``prefix`` defaults to ``sessionrec:``)::

    {prefix}s:{session_id}   hash  v = version, d = packed SessionRecord; TTL session_ttl_s
                                   (+ a grace period for tracked sessions, see below)
    {prefix}u:{user_id}      hash  v = version, d = packed UserRecord; TTL user_ttl_s
    {prefix}idle             sorted set of tracked session keys, score = last write (unix s)
    {prefix}d:{device_id}    string: the last user logged in on the device; TTL user_ttl_s
    {prefix}reload           string: the last /admin/reload request (JSON), see the app

A write runs one Lua script (atomic on the server): compare the stored version with the
expected one, write the record and its TTL, index a tracked session by its write time (ARGV[4]:
the score; '' un-indexes, '-' leaves the index alone, for users).
Tracked sessions (those whose user state they will advance) live ``grace_s`` longer than the
idle timeout, so that :meth:`RedisStore.take_expired` can hand them out before Redis drops them;
the take scripts delete what they return, so only one worker ever folds a session.

An experiment's variants each get a namespace (:meth:`RedisStore.namespace`): the same keys
under ``{prefix}{name}:``, on the same connection pool; device links stay under ``{prefix}``.

Every Redis or connection error becomes :class:`StoreUnavailable`; the client reconnects by
itself on the next call once the server is back.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from sessionrec.errors import ConfigError
from sessionrec.serving.records import RecordError, SessionRecord, UserRecord
from sessionrec.serving.store import SessionRead, StateStore, StoreUnavailable, Versioned

log = logging.getLogger(__name__)

_CAS = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v then v = '0' end
if v ~= ARGV[1] then return 0 end
local nv = tonumber(ARGV[1]) + 1
redis.call('HSET', KEYS[1], 'v', nv, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], KEYS[1])
elseif ARGV[4] ~= '-' then
  redis.call('ZADD', KEYS[2], ARGV[4], KEYS[1])
end
return nv
"""

# A session read; without a record also the epoch (set when missing, as in epoch()) and
# whether the session is in the lost set: one round trip for a new session, not three.
_READ = """
local got = redis.call('HMGET', KEYS[1], 'v', 'd')
if got[2] then return got end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
return {got[1], got[2], redis.call('GET', KEYS[2]), redis.call('SISMEMBER', KEYS[3], ARGV[2])}
"""

_TAKE = """
local d = redis.call('HGET', KEYS[1], 'd')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return d
"""

_TAKE_EXPIRED = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, k in ipairs(keys) do
  local d = redis.call('HGET', k, 'd')
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], k)
  if d then
    table.insert(out, k)
    table.insert(out, d)
  end
end
return out
"""


class _Coalescer:
    """Script calls made in the same event-loop turn, sent to Redis as one pipeline.

    A batch of model steps finishes together and each of its requests then writes its
    session: those compare-and-sets (and reads started together) share one round trip, and
    the client's per-command work (pool, timeouts, parsing) is paid once per pipeline
    instead of once per command. Each call still gets its own answer or error; a script the
    server does not know (restarted) is loaded and run again by itself.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[tuple[AsyncScript, list, list, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()

    def call(self, script: AsyncScript, keys: list, args: list) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after the callbacks already due in this turn
        self._pending.append((script, keys, args, future))
        return future

    def _flush(self) -> None:
        calls, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _send(self, calls: list) -> None:
        try:
            await self._answer(calls)
        finally:  # cancelled (shutdown) or failed in between: nobody waits for ever
            for *_, future in calls:
                if not future.done():
                    future.set_exception(ConnectionError("the Redis pipeline was abandoned"))

    async def _answer(self, calls: list) -> None:
        if len(calls) == 1:
            results = [await _outcome(calls[0][0](keys=calls[0][1], args=calls[0][2]))]
        else:
            pipe = self._client.pipeline(transaction=False)
            for script, keys, args, _ in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results = await _outcome(pipe.execute(raise_on_error=False))
            if isinstance(results, BaseException):
                results = [results] * len(calls)
        for (script, keys, args, future), result in zip(calls, results, strict=True):
            if isinstance(result, NoScriptError):
                result = await _outcome(script(keys=keys, args=args))  # loads the script
            if future.done():  # its request was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


async def _outcome(awaitable):
    """The awaitable's result, or the Redis or connection error it raised."""
    try:
        return await awaitable
    except (RedisError, OSError) as err:
        return err


class RedisStore(StateStore):
    """State store on a Redis server (``redis://host:port/db``)."""

    def __init__(self, url: str, session_ttl_s: float = 1800.0, user_ttl_s: float = 90 * 86400.0,
                 timeout_s: float = 0.25, prefix: str = "sessionrec:", grace_s: float = 600.0,
                 max_connections: int = 64) -> None:
        super().__init__(session_ttl_s, user_ttl_s)
        if timeout_s <= 0:
            raise ConfigError(f"store_timeout_s must be positive, got {timeout_s}")
        self.url = url
        self.prefix = prefix
        self.grace_s = float(grace_s)
        try:
            self._redis = aioredis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                max_connections=max_connections, health_check_interval=0)
        except ValueError as err:
            raise ConfigError(f"store: invalid Redis URL {url!r}: {err}") from err
        self._cas = self._redis.register_script(_CAS)
        self._read = self._redis.register_script(_READ)
        self._take = self._redis.register_script(_TAKE)
        self._take_expired = self._redis.register_script(_TAKE_EXPIRED)
        self._coalesced = _Coalescer(self._redis)
        self._idle_key = f"{prefix}idle"
        self._link_prefix = prefix
        self._owns_client = True

    def namespace(self, name: str) -> RedisStore:
        view = copy.copy(self)
        view.prefix = f"{self.prefix}{name}:"
        view._idle_key = f"{view.prefix}idle"
        view._owns_client = False  # the pool is closed by the store that opened it
        return view

    def session_key(self, session_id: str) -> str:
        return f"{self.prefix}s:{session_id}"

    def user_key(self, user_id: str) -> str:
        return f"{self.prefix}u:{user_id}"

    @property
    def client(self) -> aioredis.Redis:
        """The underlying client (for the reload channel and tests)."""
        return self._redis

    async def _call(self, op: str, coro):
        try:
            return await coro
        except (RedisError, OSError) as err:
            raise StoreUnavailable(f"Redis at {self.url}: {op} failed: "
                                   f"{type(err).__name__}: {err}") from err

    async def get_session(self, session_id: str) -> Versioned[SessionRecord] | None:
        v, d = await self._call("read session",
                                self._redis.hmget(self.session_key(session_id), "v", "d"))
        return None if d is None else Versioned(int(v), _read(SessionRecord, d, session_id))

    async def read_session(self, session_id: str) -> SessionRead:
        got = await self._call("read session", self._coalesced.call(
            self._read, [self.session_key(session_id), f"{self.prefix}epoch",
                         f"{self.prefix}lost"], [uuid.uuid4().hex, session_id]))
        if got[1] is not None:
            return SessionRead(Versioned(int(got[0]), _read(SessionRecord, got[1], session_id)))
        return SessionRead(None, got[2].decode("ascii") if got[2] else "", bool(got[3]))

    async def put_session(self, session_id: str, expected: int, record: SessionRecord,
                          track_idle: bool = False) -> int | None:
        ttl = self.session_ttl_s + (self.grace_s if track_idle else 0.0)
        score = repr(record.updated_at) if track_idle else ""
        version = await self._call("write session", self._coalesced.call(
            self._cas, [self.session_key(session_id), self._idle_key],
            [str(expected), record.pack(), int(ttl * 1000), score]))
        return int(version) or None

    async def take_session(self, session_id: str) -> SessionRecord | None:
        d = await self._call("take session", self._take(
            keys=[self.session_key(session_id), self._idle_key]))
        return None if d is None else _read(SessionRecord, d, session_id)

    async def take_expired(self, now: float, limit: int = 100) -> list[tuple[str, SessionRecord]]:
        flat = await self._call("take idle sessions", self._take_expired(
            keys=[self._idle_key], args=[repr(now - self.session_ttl_s), int(limit)]))
        skip = len(self.prefix) + 2
        taken = [(flat[i].decode("utf-8")[skip:], flat[i + 1]) for i in range(0, len(flat), 2)]
        out = [(sid, _read(SessionRecord, d, sid)) for sid, d in taken]
        return [(sid, record) for sid, record in out if record is not None]

    async def get_user(self, user_id: str) -> Versioned[UserRecord] | None:
        v, d = await self._call("read user", self._redis.hmget(self.user_key(user_id), "v", "d"))
        return None if d is None else Versioned(int(v), _read(UserRecord, d, user_id))

    async def put_user(self, user_id: str, expected: int, record: UserRecord) -> int | None:
        version = await self._call("write user", self._cas(
            keys=[self.user_key(user_id), self._idle_key],
            args=[str(expected), record.pack(), int(self.user_ttl_s * 1000), "-"]))
        return int(version) or None

    async def get_link(self, device_id: str) -> str | None:
        user = await self._call("read link",
                                self._redis.get(f"{self._link_prefix}d:{device_id}"))
        return None if user is None else user.decode("utf-8")

    async def put_link(self, device_id: str, user_id: str) -> None:
        await self._call("write link", self._redis.set(
            f"{self._link_prefix}d:{device_id}", user_id, px=int(self.user_ttl_s * 1000)))

    async def ping(self) -> None:
        await self._call("ping", self._redis.ping())

    async def epoch(self) -> str:
        key = f"{self.prefix}epoch"
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(key, uuid.uuid4().hex, nx=True)  # no TTL: gone only with the contents
        pipe.get(key)
        _, got = await self._call("read epoch", pipe.execute())
        return got.decode("ascii") if got else ""

    async def mark_lost(self, session_ids: list[str]) -> None:
        key = f"{self.prefix}lost"
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(key, *session_ids)
        pipe.pexpire(key, int(self.session_ttl_s * 1000))
        await self._call("mark lost sessions", pipe.execute())

    async def was_lost(self, session_id: str) -> bool:
        return bool(await self._call("read lost sessions",
                                     self._redis.sismember(f"{self.prefix}lost", session_id)))

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    def describe(self) -> str:
        return f"redis {self.url} (prefix {self.prefix!r})"


def _read(cls, blob: bytes, key: str):
    """The record in ``blob``; None (logged) when it is unreadable."""
    try:
        return cls.unpack(blob)
    except RecordError as err:
        log.warning("unreadable %s %r in Redis: %s", cls.__name__, key, err)
        return None
