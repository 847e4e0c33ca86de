"""The state store contract, run against the in-process store and a real Redis server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sessionrec.errors import ConfigError
from sessionrec.serving.records import SessionRecord, UserRecord
from sessionrec.serving.redis_store import RedisStore
from sessionrec.serving.store import MemoryStore, StoreUnavailable, open_store

from .helpers import run


def record(updated: float, user: str | None = None, n: int = 1) -> SessionRecord:
    return SessionRecord(np.array([n, 0.5], np.float32), np.array([n], np.int32), n, n, user,
                         b"key00001", 0.0, updated, updated)


def user_record(n: int) -> UserRecord:
    return UserRecord(np.array([n, -n], np.float32), None, n, b"key00001", 1e12)


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore(session_ttl_s=60, user_ttl_s=600, max_sessions=100)
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisStore(url, session_ttl_s=60, user_ttl_s=600, prefix=prefix)


def test_compare_and_set_versions(store):
    async def go():
        now = 1e12  # far future: nothing expires during the test
        assert await store.get_session("s") is None
        assert await store.put_session("s", 1, record(now)) is None  # nothing at version 1
        assert await store.put_session("s", 0, record(now, n=1)) == 1
        assert await store.put_session("s", 0, record(now, n=9)) is None  # lost the race
        assert await store.put_session("s", 1, record(now, n=2)) == 2
        got = await store.get_session("s")
        assert got.version == 2 and got.record.n_events == 2
        assert got.record.state.tolist() == [2.0, 0.5]
        assert await store.take_session("s") is not None
        assert await store.take_session("s") is None  # exactly one caller gets it
        assert await store.get_session("s") is None
        assert await store.put_session("s", 0, record(now)) == 1  # a new session
        await store.close()

    run(go())


def test_read_session_brings_epoch_and_lost_mark_without_a_record(store):
    async def go():
        now = 1e12
        assert await store.put_session("s", 0, record(now, n=3)) == 1
        read = await store.read_session("s")
        assert (read.got.version, read.got.record.n_events) == (1, 3)
        assert (read.epoch, read.marked_lost) == (None, False)  # a record: nothing else read
        read = await store.read_session("new")
        assert read.got is None and read.epoch == await store.epoch()
        assert read.epoch  # written when missing, as epoch() does
        assert read.marked_lost is False
        await store.mark_lost(["new"])
        assert (await store.read_session("new")).marked_lost is await store.was_lost("new")
        await store.close()

    run(go())


def test_users_compare_and_set(store):
    async def go():
        assert await store.get_user("u") is None
        assert await store.put_user("u", 0, user_record(1)) == 1
        assert await store.put_user("u", 0, user_record(5)) is None
        assert await store.put_user("u", 1, user_record(2)) == 2
        got = await store.get_user("u")
        assert (got.version, got.record.n_sessions, got.record.state.tolist()) == (
            2, 2, [2.0, -2.0])
        await store.close()

    run(go())


def test_take_expired_hands_out_idle_tracked_sessions_once(store):
    async def go():
        await store.put_session("old-user", 0, record(1000.0, "u1"), track_idle=True)
        await store.put_session("new-user", 0, record(1050.0, "u2"), track_idle=True)
        # TTL 60 s: at 1070 the first is idle (1000 + 60 < 1070), the second is not.
        taken = await store.take_expired(now=1070.0)
        assert [(sid, r.user_id) for sid, r in taken] == [("old-user", "u1")]
        assert await store.take_expired(now=1070.0) == []
        assert await store.get_session("old-user") is None
        # A write moves a session's idle deadline.
        got = await store.get_session("new-user")
        await store.put_session("new-user", got.version, record(1100.0, "u2"), track_idle=True)
        assert await store.take_expired(now=1111.0) == []
        assert [sid for sid, _ in await store.take_expired(now=1161.0)] == ["new-user"]
        await store.close()

    run(go())


def test_memory_store_lru_bound_ends_tracked_sessions():
    async def go():
        store = MemoryStore(session_ttl_s=60, user_ttl_s=600, max_sessions=2)
        await store.put_session("a", 0, record(1e12, "ua"), track_idle=True)
        await store.put_session("b", 0, record(1e12))
        await store.put_session("c", 0, record(1e12))  # pushes "a" out
        assert await store.get_session("a") is None
        assert [sid for sid, _ in await store.take_expired(now=0.0)] == ["a"]
        await store.put_session("d", 0, record(1e12))  # pushes untracked "b" out silently
        assert await store.take_expired(now=0.0) == []
        assert (await store.get_session("c")).version == 1

    run(go())


def test_memory_store_expires_untracked_sessions_on_read():
    async def go():
        store = MemoryStore(session_ttl_s=60, user_ttl_s=600)
        await store.put_session("s", 0, record(1.0))  # written at t = 1 s: long expired
        assert await store.get_session("s") is None

    run(go())


def test_redis_keys_have_ttls(redis_url, redis_prefix):
    import redis

    async def go():
        store = RedisStore(redis_url, session_ttl_s=60, user_ttl_s=600, prefix=redis_prefix,
                           grace_s=30)
        await store.put_session("plain", 0, record(1e12))
        await store.put_session("tracked", 0, record(1e12, "u"), track_idle=True)
        await store.put_user("u", 0, user_record(1))
        await store.close()

    run(go())
    client = redis.Redis.from_url(redis_url)
    assert 59_000 < client.pttl(f"{redis_prefix}s:plain") <= 60_000
    assert 89_000 < client.pttl(f"{redis_prefix}s:tracked") <= 90_000  # TTL + grace
    assert 599_000 < client.pttl(f"{redis_prefix}u:u") <= 600_000
    assert client.zscore(f"{redis_prefix}idle", f"{redis_prefix}s:tracked") == 1e12
    assert client.zscore(f"{redis_prefix}idle", f"{redis_prefix}s:plain") is None


def test_redis_unreadable_value_is_returned_as_record_none(redis_url, redis_prefix):
    import redis

    redis.Redis.from_url(redis_url).hset(f"{redis_prefix}s:junk", mapping={"v": 7, "d": b"xx"})

    async def go():
        store = RedisStore(redis_url, prefix=redis_prefix)
        got = await store.get_session("junk")
        assert got.version == 7 and got.record is None
        assert await store.put_session("junk", 7, record(1e12)) == 8  # overwritten in place
        await store.close()

    run(go())


def test_unreachable_redis_raises_store_unavailable():
    async def go():
        store = RedisStore("redis://127.0.0.1:1/0", timeout_s=0.05)
        with pytest.raises(StoreUnavailable, match="read session failed"):
            await store.get_session("s")
        with pytest.raises(StoreUnavailable, match="ping failed"):
            await store.ping()
        await store.close()

    run(go())


@pytest.mark.parametrize(("url", "message"), [
    ("postgres://x", "unknown store 'postgres://x'"),
    ("redis://localhost:notaport/0", "invalid Redis URL"),
])
def test_open_store_errors_name_the_setting(url, message):
    with pytest.raises(ConfigError, match=message):
        open_store(url, 60, 600)


def test_store_settings_are_checked():
    with pytest.raises(ConfigError, match="TTLs must be positive"):
        MemoryStore(session_ttl_s=0)
    with pytest.raises(ConfigError, match="max_sessions and max_users"):
        MemoryStore(max_sessions=0)


def test_redis_calls_of_one_turn_share_a_pipeline_and_keep_their_own_answers(
        redis_url, redis_prefix):
    import redis

    async def go():
        store = RedisStore(redis_url, session_ttl_s=60, user_ttl_s=600, prefix=redis_prefix)
        await store.put_session("b", 0, record(1e12, n=7))
        # three writes in one turn: two new sessions and a stale version of "b"
        got = await asyncio.gather(store.put_session("a", 0, record(1e12, n=1)),
                                   store.put_session("b", 0, record(1e12, n=8)),
                                   store.put_session("c", 0, record(1e12, n=3)))
        assert got == [1, None, 1]
        reads = await asyncio.gather(*(store.read_session(s) for s in "abcd"))
        assert [r.got.record.n_events if r.got else None for r in reads] == [1, 7, 3, None]
        assert reads[3].epoch == await store.epoch()
        redis.Redis.from_url(redis_url).script_flush()  # as after a server restart
        got = await asyncio.gather(store.put_session("a", 1, record(1e12, n=2)),
                                   store.put_session("d", 0, record(1e12, n=4)))
        assert got == [2, 1]  # the scripts were loaded again
        await store.close()

    run(go())
