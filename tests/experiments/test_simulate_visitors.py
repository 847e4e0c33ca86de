"""Visitors of the replay simulator from hand-made timelines, and the click model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from sessionrec.errors import ConfigError, DataError, EmptyDataError
from sessionrec.experiments.clicks import ClickModel, visitor_rng
from sessionrec.experiments.visitors import (
    TIMELINE_SCHEMA,
    Order,
    View,
    build_visitors,
    held_out,
    sample_visitors,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HOUR, DAY = 3600.0, 86400.0


def timeline(rows: list[tuple]) -> pl.DataFrame:
    """(session, user, item, hours after T0, kind, order_id, price) -> a timeline frame."""
    df = pl.DataFrame(rows, schema=["session_id", "user_id", "item_id", "hours", "kind",
                                    "order_id", "price"], orient="row")
    return df.select(
        pl.col("session_id").cast(pl.Int64), pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        ts=(pl.lit(T0) + pl.duration(seconds=pl.col("hours") * 3600)).cast(
            TIMELINE_SCHEMA["ts"]),
        kind=pl.col("kind"), order_id=pl.col("order_id").cast(pl.String),
        price=pl.col("price").cast(pl.Float64))


ROWS = [
    # user 7: two sessions two days apart; buys item 20 (seen in session 1) in session 2
    (1, "7", "10", 0.00, "view", None, None),
    (1, "7", "20", 0.01, "view", None, None),
    (1, "7", "30", 0.02, "view", None, None),
    (2, "7", "40", 48.0, "view", None, None),
    (2, "7", "10", 48.1, "view", None, None),
    (2, "7", "20", 48.2, "purchase", "o1", 9.5),
    (2, "7", "40", 48.2, "purchase", "o1", 20.0),
    # anonymous session 3 buys what it viewed, without a price
    (3, None, "50", 1.0, "view", None, None),
    (3, None, "60", 1.1, "view", None, None),
    (3, None, "60", 1.2, "purchase", "o2", None),
    # user 9 only buys: no views, the order is dropped
    (4, "9", "10", 2.0, "purchase", "o3", 5.0),
    # before the cut-off (training data): never replayed
    (0, "7", "99", -5.0, "view", None, None),
]


def test_visitors_group_by_user_else_session_with_orders_at_their_times() -> None:
    events = held_out(timeline(ROWS), T0 - timedelta(hours=1), days=14)
    visitors, counts = build_visitors(events)
    assert [v.visitor_id for v in visitors] == ["u7", "s3"]  # by first event
    u7, s3 = visitors
    assert u7.user_id == "7" and s3.user_id is None
    assert [v.product_id for v in u7.views] == [10, 20, 30, 40, 10]  # ints go out as numbers
    assert [v.session_id for v in u7.views] == ["1", "1", "1", "2", "2"]
    assert u7.orders == (Order("o1", "2", (20, 40), (9.5, 20.0), T0.timestamp() + 48.2 * HOUR),)
    assert s3.orders[0].prices is None and s3.orders[0].product_ids == (60,)
    assert counts == {"visitors": 2, "views": 7, "orders": 2, "order_lines": 3,
                      "dropped_orders": 1}
    # steps: views and orders merged in time order; the order comes last
    kinds = [type(s).__name__ for _, s in u7.steps()]
    assert kinds == ["View"] * 5 + ["Order"]
    assert [i for i, _ in u7.steps()] == [0, 1, 2, 3, 4, -1]


def test_leakage_guard_and_period() -> None:
    frame = timeline(ROWS)
    events = held_out(frame, T0 - timedelta(hours=1), days=14)
    assert events["ts"].min() > T0 - timedelta(hours=1)
    assert "99" not in events["item_id"].to_list()  # the pre-cut-off view
    # only one day after the cut-off: user 7's second session and its order are cut off
    short = held_out(frame, T0 - timedelta(hours=1), days=1)
    visitors, _ = build_visitors(short)
    assert [len(v.views) for v in visitors] == [3, 2] and visitors[0].orders == ()
    with pytest.raises(EmptyDataError, match="time split"):
        held_out(frame, T0 + timedelta(days=30), days=14)


def test_an_order_at_the_same_time_as_a_view_comes_after_it() -> None:
    rows = [(1, "7", "1", 0.0, "view", None, None), (1, "7", "1", 0.0, "purchase", "o", 1.0),
            (1, "7", "2", 0.0, "view", None, None)]
    (visitor,), _ = build_visitors(held_out(timeline(rows), T0 - timedelta(hours=1), None))
    assert [type(s).__name__ for _, s in visitor.steps()] == ["View", "View", "Order"]


def test_views_later_looks_ahead_across_sessions_and_within_the_horizon() -> None:
    (u7, _), _ = build_visitors(held_out(timeline(ROWS), T0 - timedelta(hours=1), None))
    # views: 0:10, 1:20, 2:30 (session 1), 3:40, 4:10 (session 2, two days later)
    assert u7.views_later(0, 20) and u7.views_later(0, "20")  # same session, later
    assert u7.views_later(0, 40)                              # a later session
    assert u7.views_later(0, 10)                              # viewed again in session 2
    assert not u7.views_later(4, 10)                          # never again after the last
    assert not u7.views_later(1, 20)                          # the view itself is not later
    assert not u7.views_later(0, 99)                          # never viewed
    assert not u7.views_later(0, 40, horizon_s=1 * DAY)       # two days later: too late
    assert u7.views_later(0, 40, horizon_s=3 * DAY)


def test_sample_visitors_is_seeded_and_keeps_time_order() -> None:
    visitors = [_visitor(f"u{i}", float(i)) for i in range(50)]
    a = sample_visitors(visitors, 10, seed=1)
    assert len(a) == 10 and a == sample_visitors(visitors, 10, seed=1)
    assert [v.first_ts for v in a] == sorted(v.first_ts for v in a)
    assert a != sample_visitors(visitors, 10, seed=2)
    assert sample_visitors(visitors, 0, seed=1) == visitors


def _visitor(vid: str, ts: float):
    from sessionrec.experiments.visitors import Visitor

    return Visitor(vid, None, (View("s", 1, ts),))


# -- clicks ---------------------------------------------------------------------------------
def test_click_probabilities_are_position_biased_and_only_on_later_views() -> None:
    model = ClickModel(base=0.5, eta=1.0, noise=0.1)
    # ranks 1..4, relevant at 1 and 3: 0.5/1, 0.1/2, 0.5/3, 0.1/4
    np.testing.assert_allclose(model.probabilities([True, False, True, False]),
                               [0.5, 0.05, 0.5 / 3, 0.025])
    steep = ClickModel(base=0.4, eta=2.0, noise=0.0)
    np.testing.assert_allclose(steep.probabilities([True, True, False]), [0.4, 0.1, 0.0])
    # uniforms below the probability click: 0.49 < 0.5, 0.06 > 0.05, 0.1 < 0.1667, 0.03 > 0.025
    assert model.clicked(np.array([0.49, 0.06, 0.1, 0.03]), [True, False, True, False]) == [0, 2]
    assert steep.clicked(np.array([0.0, 0.0, 0.0]), [False, False, False]) == []  # no noise


def test_click_frequencies_match_the_model_with_a_seeded_generator() -> None:
    model = ClickModel(base=0.3, eta=1.0, noise=0.02)
    rng = np.random.default_rng(0)
    relevant = [False, True, True, False, False]
    clicks = np.zeros(5)
    n = 20_000
    for _ in range(n):
        for pos in model.clicked(rng.random(5), relevant):
            clicks[pos] += 1
    expected = np.array([0.02, 0.15, 0.1, 0.005, 0.004])
    assert np.all(np.abs(clicks / n - expected) <= 4 * np.sqrt(expected * (1 - expected) / n))


def test_visitor_generators_depend_on_seed_and_visitor_only() -> None:
    a = visitor_rng(3, "u7").random(4)
    np.testing.assert_array_equal(a, visitor_rng(3, "u7").random(4))
    assert not np.array_equal(a, visitor_rng(3, "u8").random(4))
    assert not np.array_equal(a, visitor_rng(4, "u7").random(4))


@pytest.mark.parametrize("kwargs", [{"base": 1.5}, {"noise": -0.1}, {"eta": -1.0}])
def test_click_model_refuses_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="clicks"):
        ClickModel(**kwargs)


def test_held_out_refuses_events_at_the_cutoff() -> None:
    frame = timeline([(1, "7", "1", 0.0, "view", None, None)])
    with pytest.raises((EmptyDataError, DataError)):
        held_out(frame, T0, None)  # the only view is at the cut-off: seen in training


# -- pacing -----------------------------------------------------------------------------------
def test_clock_paces_simulated_time_on_the_wall_clock() -> None:
    import asyncio

    from sessionrec.experiments.simulate import Clock

    wall = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        wall[0] += seconds

    # 1 hour of simulated time per wall-clock second, starting at simulated t = 5000.
    clock = Clock(5000.0, 3600.0, now=lambda: wall[0], sleep=sleep)

    async def walk() -> list[float]:
        lags = [await clock.wait(5000.0 + 1800.0)]   # due 0.5 s after the start
        wall[0] += 2.0                                # the request took 2 s
        lags.append(await clock.wait(5000.0 + 3600.0))  # due at 1 s: 1.5 s late
        return lags

    assert asyncio.run(walk()) == [0.0, 1.5]
    assert slept == [0.5]
    fast = Clock(0.0, 0.0, now=lambda: wall[0], sleep=sleep)
    assert asyncio.run(fast.wait(1e9)) == 0.0 and slept == [0.5]  # no pacing: never sleeps
