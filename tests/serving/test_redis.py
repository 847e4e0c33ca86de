"""The middleware and the app on a real Redis server: user states, lost updates across
workers, a Redis outage during requests, reloads reaching every worker."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from sessionrec.serving.app import create_app
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.middleware import Middleware
from sessionrec.serving.redis_store import RedisStore

from .helpers import TestClient, TinyRNN, TinyUserRNN, make_bundle, run, settings


def redis_middleware(url: str, prefix: str, model=None, clock=time.time, **kw) -> Middleware:
    store = RedisStore(url, session_ttl_s=1800, user_ttl_s=86400, prefix=prefix, timeout_s=0.5)
    return Middleware(make_bundle(model), store, settings(**kw), Metrics(), clock=clock)


def test_user_states_through_redis(redis_url, redis_prefix):
    now = [1000.0]
    mw = redis_middleware(redis_url, redis_prefix, TinyUserRNN(), clock=lambda: now[0])

    async def go():
        await mw.event("s1", 10, user_id="u")
        await mw.event("s1", 11, user_id="u")  # s1: [.5, 1]
        await mw.event("s2", 13, user_id="u")  # ends s1: u = [.5, 1]; s2 = [-.75, .5]
        await mw.event("s3", 12, user_id="v")  # v's s3: [1, 1]
        now[0] += 1801
        swept = await mw.sweep()  # s2 and s3 are idle now
        u = await mw.store.get_user("u")
        v = await mw.store.get_user("v")
        gone = await mw.store.get_session("s2")
        await mw.close()
        return swept, u.record, v.record, gone

    swept, u, v, gone = run(go())
    assert swept == 2 and gone is None
    # u: 0.5 * [.5, 1] + [-.75, .5] = [-.5, 1]; two sessions folded
    assert u.state.tolist() == [-0.5, 1.0] and u.n_sessions == 2 and u.open_session is None
    assert v.state.tolist() == [1.0, 1.0] and v.n_sessions == 1


def test_no_lost_updates_from_four_workers(redis_url, redis_prefix):
    """Four API workers (each its own event loop, Redis connection and model thread) click
    into one session at the same time; every click must be in the final state."""
    clicks = {w: [10 + (w + 3 * i) % 4 for i in range(25)] for w in range(4)}
    conflicts = []
    barrier = threading.Barrier(4)

    def worker(w: int) -> None:
        mw = redis_middleware(redis_url, redis_prefix, max_seen=200)

        async def go():
            await mw.store.ping()
            barrier.wait()
            answers = await asyncio.gather(*(mw.event("hot", c) for c in clicks[w]))
            await mw.close()
            return answers

        answers = asyncio.run(go())
        assert not any(a.fallback for a in answers)
        conflicts.append(mw.metrics.registry.get_sample_value(
            "sessionrec_state_conflicts_total"))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(conflicts) == 4  # every worker finished without an assertion error
    reader = redis_middleware(redis_url, redis_prefix)
    record = run(reader.store.get_session("hot")).record
    assert record.n_events == 100
    every = sorted(c - 10 for w in clicks for c in clicks[w])
    assert sorted(record.seen.tolist()) == every


def test_redis_outage_falls_back_and_recovers(private_redis):
    mw = Middleware(make_bundle(TinyRNN()),
                    RedisStore(private_redis.url, timeout_s=0.2, prefix="t:"),
                    settings(), Metrics())

    async def go():
        normal = await mw.event("s", 10, k=3)
        private_redis.stop()
        down = [await mw.event("s", 10, k=3) for _ in range(3)]
        private_redis.start()
        for _ in range(50):  # the client reconnects on its own
            back = await mw.event("s", 10, k=3)
            if not back.fallback:
                break
            await asyncio.sleep(0.02)
        await mw.close()
        return normal, down, back

    normal, down, back = run(go())
    assert not normal.fallback and normal.products == [12, 11, 13]
    assert all(a.fallback and a.reason == "store_unavailable" for a in down)
    assert down[0].products == [11, 13, 12]  # co-occurrence with product 10, then popular
    assert not back.fallback and back.products == [12, 11, 13]
    errors = mw.metrics.registry.get_sample_value("sessionrec_store_errors_total", {"op": "event"})
    assert errors >= 3


def test_reload_reaches_every_worker(redis_url, redis_prefix, runs_root):
    def app():
        return create_app(settings(model=str(runs_root / "runs" / "gru4rec"), store=redis_url,
                                   redis_prefix=redis_prefix, admin_token="secret",
                                   reload_poll_s=0.05))

    with TestClient(app()) as one, TestClient(app()) as two:
        before = two.get("/readyz").json()["model"]["tag"]
        r = one.post("/admin/reload", headers={"Authorization": "Bearer secret"},
                     json={"model": str(runs_root / "runs" / "gru4rec-b")})
        assert r.status_code == 200
        new = r.json()["tag"]
        assert new != before
        for _ in range(100):
            if two.get("/readyz").json()["model"]["tag"] == new:
                break
            time.sleep(0.05)
        assert two.get("/readyz").json()["model"]["tag"] == new
        event = two.post("/v1/events", json={"session_id": "s", "product_id": 100})
        assert event.status_code == 200 and event.json()["model"] == new
        assert np.all(np.isin(event.json()["Predictions"], range(100, 112)))


def test_a_session_lost_with_a_redis_restart_says_state_reset(private_redis):
    """Redis restarts empty: the live session's next click, on the worker that served it or
    on another one (after the first has seen the restart), answers ``state_reset: true``;
    its next clicks and new sessions answer false."""
    def worker() -> Middleware:
        return Middleware(make_bundle(TinyRNN()),
                          RedisStore(private_redis.url, timeout_s=0.2, prefix="t:"),
                          settings(), Metrics())

    a, b = worker(), worker()

    async def click(mw, session, product=10):
        for _ in range(100):  # the client reconnects on its own after the restart
            answer = await mw.event(session, product, k=3)
            if not answer.fallback:
                return answer
            await asyncio.sleep(0.02)
        raise AssertionError("Redis did not come back")

    async def go():
        first = [await click(a, "s"), await click(a, "s", 11), await click(a, "t")]
        private_redis.stop()
        private_redis.start()  # empty: no persistence
        again = await click(a, "s", 11)  # same worker: it remembers s
        after = await click(a, "s", 12)
        new = await click(a, "fresh")
        await b.sweep()  # b had seen nothing of t; a published its lost sessions
        other = await click(b, "t")
        for mw in (a, b):
            await mw.close()
        return first, again, after, new, other

    first, again, after, new, other = run(go())
    assert [f.state_reset for f in first] == [False, False, False]
    # started over: state [0, 1] after 11 alone, scores [0, 1.1, 1.2, 0]; 10 is no longer seen
    # (had s kept its state, 10 and 11 would be excluded: [12, 13])
    assert again.state_reset and again.products[0] == 12 and sorted(again.products) == [
        10, 12, 13]
    assert not after.state_reset and not new.state_reset
    assert other.state_reset
    lost = a.metrics.registry.get_sample_value("sessionrec_state_resets_total",
                                               {"kind": "session_lost"})
    assert lost == 1
