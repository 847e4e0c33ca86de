"""The middleware with the hand-computable TinyRNN / TinyUserRNN (see helpers.py).

Products 10, 11, 12, 13 are items 0..3. A first click on 10 gives the state [1, 0] and the
scores [1, .1, 1.2, -1]; then 11 gives [.5, 1] and [.5, 1.1, 1.7, -.5].
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sessionrec.serving.metrics import Metrics
from sessionrec.serving.middleware import Middleware
from sessionrec.serving.store import MemoryStore, StoreUnavailable

from .helpers import TinyRNN, TinyTrainedUserRNN, TinyUserRNN, make_bundle, run, settings


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FlakyStore(MemoryStore):
    """A memory store that can be switched off, and counts reads."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.down = False
        self.reads = 0

    async def get_session(self, session_id):
        self.reads += 1
        if self.down:
            raise StoreUnavailable("switched off by the test")
        return await super().get_session(session_id)


def middleware(model=None, clock=None, store=None, **kw) -> Middleware:
    clock = clock or Clock()
    store = store or MemoryStore(session_ttl_s=1800, user_ttl_s=86400, clock=clock)
    return Middleware(make_bundle(model), store, settings(**kw), Metrics(), clock=clock)


def sample(mw: Middleware, name: str, **labels) -> float:
    return mw.metrics.registry.get_sample_value(name, labels) or 0.0


def stored(mw: Middleware, session_id: str):
    got = run_sync(mw.store.get_session(session_id))
    return None if got is None else got.record


def run_sync(coro):
    """Await in a fresh loop (memory store calls do not depend on the loop)."""
    return asyncio.new_event_loop().run_until_complete(coro)


def test_events_advance_the_session_and_rank_unseen_products():
    mw = middleware()

    async def go():
        first = await mw.event("s", 10)
        second = await mw.event("s", "11")
        other = await mw.event("t", 10, k=2, exclude_seen=False)
        return first, second, other

    first, second, other = run(go())
    assert (first.products, first.fallback, first.model) == ([12, 11, 13], False,
                                                             "tiny-rnn@" + b"tinykey1".hex())
    np.testing.assert_allclose(first.scores, [1.2, 0.1, -1.0], rtol=1e-6)
    assert second.products == [12, 13]  # 10 and 11 were seen
    assert other.products == [12, 10]  # seen items allowed
    record = stored(mw, "s")
    assert record.state.tolist() == [0.5, 1.0]
    assert record.seen.tolist() == [0, 1] and record.last_item == 1 and record.n_events == 2


def test_unknown_product_leaves_the_state_and_answers_from_cooccurrence():
    mw = middleware()

    async def go():
        await mw.event("s", 10)
        return await mw.event("s", "no-such-product", k=3), await mw.event("new", "nope", k=4)

    known_before, fresh = run(go())
    # cooc row of item 0: 1 (3 sessions), 3 (1); then popularity 11, 13, 10 (seen), 12
    assert (known_before.products, known_before.fallback, known_before.reason) == (
        [11, 13, 12], True, "unknown_product")
    assert known_before.model == "fallback:cooc"
    assert fresh.products == [11, 13, 10, 12]  # no known item: popularity
    record = stored(mw, "s")
    assert record.n_events == 1 and record.state.tolist() == [1.0, 0.0]
    assert stored(mw, "new") is None
    assert sample(mw, "sessionrec_fallbacks_total", reason="unknown_product") == 2


def test_store_outage_falls_back_then_recovers():
    clock = Clock()
    store = FlakyStore(session_ttl_s=1800, user_ttl_s=86400, clock=clock)
    mw = middleware(clock=clock, store=store, store_retry_s=5.0, store_failures=2)

    async def go():
        store.down = True
        down = [await mw.event("s", 10, k=3) for _ in range(2)]  # two errors in a row ...
        assert store.reads == 2
        during = await mw.event("s", 10, k=3)  # ... so for 5 s the store is not asked
        assert store.reads == 2
        store.down = False
        clock.t += 5.0
        return down[0], during, await mw.event("s", 10, k=3)

    down, during, back = run(go())
    assert (down.products, down.fallback, down.reason) == ([11, 13, 12], True,
                                                           "store_unavailable")
    assert during.fallback and not back.fallback and back.products == [12, 11, 13]
    assert sample(mw, "sessionrec_store_errors_total", op="event") == 2
    assert sample(mw, "sessionrec_fallbacks_total", reason="store_unavailable") == 3


def test_an_isolated_store_error_does_not_switch_the_store_off():
    store = FlakyStore(session_ttl_s=1800, user_ttl_s=86400)
    mw = middleware(store=store, store_retry_s=60.0, store_failures=2)

    async def go():
        for down in (True, False, True, False):
            store.down = down
            await mw.event("s", 10)
        return store.reads

    assert run(go()) == 4  # error, success, error, success: never two in a row


def test_model_failure_falls_back():
    mw = middleware(TinyRNN(fail=True))
    answer = run(mw.event("s", 10, k=2))
    assert (answer.fallback, answer.reason, answer.products) == (True, "model_error", [11, 13])
    assert stored(mw, "s") is None


def test_concurrent_events_of_one_session_apply_in_arrival_order():
    mw = middleware()

    async def go():
        return await asyncio.gather(mw.event("s", 10), mw.event("s", 11))

    answers = run(go())
    assert [a.products for a in answers] == [[12, 11, 13], [12, 13]]
    record = stored(mw, "s")
    assert record.n_events == 2 and record.state.tolist() == [0.5, 1.0]
    assert sample(mw, "sessionrec_state_conflicts_total") == 0  # serialised in the worker


def workers(n: int, shared_batcher: bool = True, **kw) -> list[Middleware]:
    """``n`` middlewares on one store: API workers sharing a state store."""
    clock = Clock()
    store = MemoryStore(session_ttl_s=1800, user_ttl_s=86400, clock=clock)
    first = middleware(store=store, clock=clock, **kw)
    return [first] + [Middleware(make_bundle(), store, settings(**kw), Metrics(), clock=clock,
                                 batcher=first.batcher if shared_batcher else None)
                      for _ in range(n - 1)]


def test_concurrent_events_from_two_workers_lose_no_update():
    a, b = workers(2)

    async def go():
        return await asyncio.gather(a.event("s", 10), b.event("s", 11))

    answers = run(go())
    assert not any(x.fallback for x in answers)
    # Both read version 0 and were computed in one batch; a's click on 10 was written first,
    # b's compare-and-set failed and b redid its click on 11 on top of it.
    record = stored(a, "s")
    assert record.n_events == 2 and record.seen.tolist() == [0, 1]
    assert record.state.tolist() == [0.5, 1.0]
    assert sample(a, "sessionrec_state_conflicts_total") == 0
    assert sample(b, "sessionrec_state_conflicts_total") == 1


def test_many_concurrent_events_from_many_workers_all_land():
    mws = workers(4, shared_batcher=False, max_seen=100)
    clicks = [10 + (i * 7) % 4 for i in range(40)]

    async def go():
        await asyncio.gather(*(mws[i % 4].event("hot", c) for i, c in enumerate(clicks)))

    run(go())
    record = stored(mws[0], "hot")
    assert record.n_events == 40
    assert sorted(record.seen.tolist()) == sorted(c - 10 for c in clicks)


def test_contention_beyond_the_retry_limit_falls_back():
    a, b = workers(2, max_retries=1)

    async def go():
        return await asyncio.gather(a.event("s", 10), b.event("s", 11))

    answers = run(go())
    assert [x.reason for x in answers] == [None, "contention"]
    assert stored(a, "s").n_events == 1


def test_seen_list_is_bounded():
    mw = middleware(max_seen=2)

    async def go():
        for product in (10, 11, 12):
            await mw.event("s", product)

    run(go())
    assert stored(mw, "s").seen.tolist() == [1, 2]


def test_states_of_another_model_are_reset():
    mw = middleware()
    run(mw.event("s", 10))
    mw.bundle = make_bundle(key=b"otherkey")  # what a reload does
    run(mw.event("s", 11))
    record = stored(mw, "s")
    assert record.n_events == 1 and record.state.tolist() == [0.0, 1.0]
    assert record.model_key == b"otherkey"
    assert sample(mw, "sessionrec_state_resets_total", kind="session") == 1


def test_recommendations_of_a_live_session():
    mw = middleware()

    async def go():
        await mw.event("s", 10)
        await mw.event("s", 11)
        return await mw.recommendations("s", k=1), await mw.recommendations("nope")

    view, missing = run(go())
    assert view.answer.products == [12] and view.n_events == 2 and missing is None
    assert stored(mw, "s").n_events == 2  # reading does not click


def test_similar_products():
    mw = middleware()
    answer = run(mw.similar(10, k=3))
    assert answer.products == [12, 11, 13]  # cosine with [1, 0]: .71, 0, -1
    assert run(mw.similar("unknown")) is None


# -- users (TinyUserRNN: sessions start from the user state, u' = 0.5 u + s) --------------------
def users(mw: Middleware) -> dict:
    return {uid: rec for uid, (_, rec) in mw.store._users.items()}


def test_ended_session_advances_the_user_and_the_next_starts_from_it():
    mw = middleware(TinyUserRNN())

    async def go():
        await mw.event("s1", 10, user_id="u")
        await mw.event("s1", 11, user_id="u")  # s1 ends in state [.5, 1]
        assert await mw.end_session("s1")
        assert not await mw.end_session("s1")
        await mw.event("s2", 13, user_id="u")

    run(go())
    user = users(mw)["u"]
    assert user.state.tolist() == [0.5, 1.0]  # 0.5 * [0, 0] + [.5, 1]
    assert user.n_sessions == 1 and user.open_session == "s2"
    # s2 starts from [.5, 1]: 0.5 * [.5, 1] + E3 = [-.75, .5]
    assert stored(mw, "s2").state.tolist() == [-0.75, 0.5]
    assert sample(mw, "sessionrec_sessions_ended_total", how="explicit") == 1


def test_a_users_new_session_ends_the_previous_one():
    mw = middleware(TinyUserRNN())

    async def go():
        await mw.event("s1", 10, user_id="u")  # [1, 0]
        await mw.event("s2", 11, user_id="u")

    run(go())
    assert stored(mw, "s1") is None
    assert users(mw)["u"].state.tolist() == [1.0, 0.0]
    assert stored(mw, "s2").state.tolist() == [0.5, 1.0]  # 0.5 * [1, 0] + E1
    assert sample(mw, "sessionrec_sessions_ended_total", how="next_session") == 1


def test_idle_sessions_end_on_their_next_event_and_in_the_sweep():
    clock = Clock(1000.0)
    mw = middleware(TinyUserRNN(), clock=clock)

    async def go():
        await mw.event("s1", 10, user_id="u")  # [1, 0]
        await mw.event("s9", 12, user_id="v")  # [1, 1]
        clock.t += 1801  # both idle for longer than the 30 min TTL
        await mw.event("s1", 11, user_id="u")  # s1 ended; a new s1 starts from u's state
        return await mw.sweep()

    assert run(go()) == 1  # s9
    assert users(mw)["u"].state.tolist() == [1.0, 0.0]
    assert stored(mw, "s1").n_events == 1 and stored(mw, "s1").state.tolist() == [0.5, 1.0]
    assert users(mw)["v"].state.tolist() == [1.0, 1.0] and users(mw)["v"].open_session is None
    assert sample(mw, "sessionrec_sessions_ended_total", how="idle") == 2


def test_users_keep_no_state_without_user_hooks_or_user_id():
    plain = middleware(TinyRNN())
    run(plain.event("s", 10, user_id="u"))
    assert users(plain) == {} and stored(plain, "s").user_id == "u"
    anonymous = middleware(TinyUserRNN())
    run(anonymous.event("s", 10))
    run(anonymous.end_session("s"))
    assert users(anonymous) == {}


@pytest.mark.parametrize("k", [1, 3])
def test_default_k_comes_from_settings(k):
    mw = middleware(default_k=k)
    assert len(run(mw.event("s", 10)).products) == k


def test_users_unknown_to_the_store_start_from_their_trained_state():
    mw = Middleware(make_bundle(TinyTrainedUserRNN(), users={"vip": 0}),
                    MemoryStore(session_ttl_s=1800, user_ttl_s=86400), settings(), Metrics())

    async def go():
        await mw.event("s1", 10, user_id="vip")  # from [2, 0]: 0.5 * [2, 0] + E0 = [2, 0]
        await mw.event("s2", 10, user_id="new")  # not a training user: zeros -> [1, 0]
        await mw.end_session("s1")

    run(go())
    assert stored(mw, "s1") is None and stored(mw, "s2").state.tolist() == [1.0, 0.0]
    assert users(mw)["vip"].state.tolist() == [3.0, 0.0]  # 0.5 * [2, 0] + [2, 0]
