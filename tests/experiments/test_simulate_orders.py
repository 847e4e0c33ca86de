"""Purchases of the synthetic Galaxus-format generator (the replay simulator's orders)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.data.synth import CHECKOUT_MS, DAY_MS, ORDER_ID_BASE, generate, synth_orders


def _views(rows: list[tuple[int, int, int, float]]) -> pl.DataFrame:
    """(user, session, product, days) -> known users' views as synth_orders takes them."""
    return pl.DataFrame(
        [(u, s, p, int(d * DAY_MS)) for u, s, p, d in rows],
        schema={"UserId": pl.Int64, "SessionId": pl.Int64, "ProductId": pl.Int64,
                "Timestamp": pl.Int64}, orient="row")


ITEMS = pl.DataFrame({"ProductId": [1, 2, 3, 4, 5], "Price": [1.0, 2.0, 3.0, 4.0, 5.0]})


def test_every_view_bought_later_when_both_probabilities_are_one() -> None:
    views = _views([
        (7, 100, 1, 0.00), (7, 100, 2, 0.01),   # session A, day 0
        (7, 101, 3, 1.00), (7, 101, 1, 1.01),   # session B, day 1 (views 1 again)
        (7, 102, 4, 20.0),                      # session C, day 20: > 14 days after B
        (8, 200, 5, 0.50),                      # another user, one session
    ])
    orders = synth_orders(views, ITEMS, np.random.default_rng(0), p_buy=1.0, p_later=1.0)
    lines = {(r["UserId"], r["ProductId"]): r for r in orders.iter_rows(named=True)}
    # A's products go to B (the only later session within 14 days); product 1, viewed again
    # in B, is bought once; B's product 3 has no later session within 14 days: bought in B;
    # C and user 8 have no later session: bought where viewed.
    assert {k: (r["SessionId"], r["ViewSessionId"]) for k, r in lines.items()} == {
        (7, 1): (101, 100), (7, 2): (101, 100), (7, 3): (101, 101), (7, 4): (102, 102),
        (8, 5): (200, 200)}
    assert orders["OrderId"].n_unique() == 3  # B's three lines are one order
    b = orders.filter(pl.col("SessionId") == 101)
    assert b["OrderId"].n_unique() == 1 and b["Price"].to_list() == [1.0, 2.0, 3.0]
    end_b = int(1.01 * DAY_MS)
    delay = b["Timestamp"].dt.epoch("ms")[0] - end_b
    assert CHECKOUT_MS[0] <= delay <= CHECKOUT_MS[1]
    assert orders["OrderId"].min() == ORDER_ID_BASE
    assert orders["Timestamp"].is_sorted()


def test_nothing_bought_when_the_probability_is_zero() -> None:
    views = _views([(7, 100, 1, 0.0)])
    assert synth_orders(views, ITEMS, np.random.default_rng(0), p_buy=0.0).height == 0
    assert synth_orders(views.clear(), ITEMS, np.random.default_rng(0)).height == 0


@pytest.fixture(scope="module")
def with_orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "raw"
    generate(out, 24_000, seed=3, events_per_shard=1_500, orders=True)
    return out


def test_orders_reference_products_their_users_viewed_before(with_orders: Path) -> None:
    orders = pl.read_parquet(with_orders / "orders.parquet")
    events = pl.read_parquet(with_orders / "events")
    views = events.filter(pl.col("LastLoggedInUserId") >= 1_000_000).select(
        UserId="LastLoggedInUserId", ViewSessionId="SessionId", ProductId="ProductId",
        seen=pl.col("Timestamp"))
    joined = orders.join(views, on=["UserId", "ViewSessionId", "ProductId"], how="left")
    first_view = joined.group_by("OrderId", "ProductId").agg(pl.col("seen").min(),
                                                             pl.col("Timestamp").first())
    assert first_view["seen"].null_count() == 0  # every line was viewed by its buyer ...
    assert (first_view["seen"] < first_view["Timestamp"]).all()  # ... before the order
    assert orders.select("UserId", "ProductId").is_unique().all()
    assert orders["Price"].null_count() == 0


def test_many_orders_come_days_after_the_viewing_session(with_orders: Path) -> None:
    orders = pl.read_parquet(with_orders / "orders.parquet")
    events = pl.read_parquet(with_orders / "events")
    sessions = events.group_by("SessionId").agg(end=pl.col("Timestamp").max())
    lines = orders.join(sessions.rename({"SessionId": "ViewSessionId"}), on="ViewSessionId")
    later = lines.filter(pl.col("SessionId") != pl.col("ViewSessionId"))
    assert later.height / lines.height > 0.3
    days_after = (later["Timestamp"] - later["end"]).dt.total_hours() / 24
    assert (days_after > 1).mean() > 0.5
    assert days_after.max() <= 14 + 1 / 24  # within the window (plus checkout)
    # the checkout session belongs to the buyer
    owner = events.group_by("SessionId").agg(pl.col("LastLoggedInUserId").first())
    checked = orders.join(owner, on="SessionId")
    assert checked.height == orders.height
    assert (checked["UserId"] == checked["LastLoggedInUserId"]).all()


def test_orders_leave_the_other_files_byte_identical(with_orders: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    generate(plain, 24_000, seed=3, events_per_shard=1_500)
    assert not (plain / "orders.parquet").exists()
    for rel in [*(p.relative_to(plain) for p in (plain / "events").iterdir()),
                Path("items.parquet")]:
        a, b = (plain / rel).read_bytes(), (with_orders / rel).read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), rel
    assert "orders" not in (plain / "README.md").read_text()
    assert "## Orders" in (with_orders / "README.md").read_text()
