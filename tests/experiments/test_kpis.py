"""KPIs of online experiments: counts, CTR, the 14-day click attribution and its edge cases.

Every expected number is counted by hand from the small log in :func:`thesis_log`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from sessionrec.errors import ConfigError, DataError
from sessionrec.experiments.eventlog import EVENT_SCHEMA
from sessionrec.experiments.kpis import (
    ExperimentParams,
    attribute_sales,
    compute_kpis,
    experiment_events,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)

def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)


def ev(kind: str, ts: datetime, **fields: Any) -> dict[str, Any]:
    """One event; ``products`` is a shorthand for ``product_ids``."""
    if "products" in fields:
        fields["product_ids"] = fields.pop("products")
    return {"kind": kind, "ts": ts, **fields}


def make_frame(events: list[dict[str, Any]], experiment: str = "exp") -> pl.DataFrame:
    """A canonical event frame (EVENT_SCHEMA): ``seq`` in list order, defaults filled in."""
    rows = []
    for seq, e in enumerate(events, start=1):
        row = {name: None for name in EVENT_SCHEMA}
        row.update(seq=seq, idempotency_key=f"k{seq}", experiment=experiment, product_ids=[],
                   orphan=False, fallback=False, received_at=e["ts"])
        row.update(e)
        if row["user_id"] is None:
            row["user_id"] = row["unit_id"]
        rows.append(row)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


PARAMS = ExperimentParams(name="exp", control="control", weights={"control": 0.5, "treat": 0.5},
                          holdout=0.2)


def thesis_log() -> pl.DataFrame:
    u1 = {"unit_id": "u1", "variant": "control", "session_id": "s1", "recommendation_id": "r1"}
    u2 = {"unit_id": "u2", "variant": "treat", "session_id": "s2", "recommendation_id": "r2"}
    u3 = {"unit_id": "u3", "variant": "control", "session_id": "s4", "recommendation_id": "r3"}
    events = [
        ev("assignment", at(), unit_id="u1", variant="control"),
        ev("assignment", at(), unit_id="u2", variant="treat"),
        ev("assignment", at(), unit_id="u3", variant="control"),
        ev("assignment", at(), unit_id="u4", variant="holdout"),
        ev("recommendation", at(), **u1, products=["p1", "p2", "p3"]),
        ev("recommendation", at(hours=22), **u2, products=["p4", "p5", "p6"], fallback=True),
        ev("recommendation", at(), **u3, products=["p7", "p9"]),
        *[ev("impression", at(hours=h), **u1, products=["p1", "p2"]) for h in range(5)],
        *[ev("impression", at(hours=h), **u3, products=["p7", "p9"]) for h in range(5)],
        *[ev("impression", at(hours=23), **u2, products=["p4"]) for _ in range(4)],
        # u1 clicks p1 twice, then p2; buys p1, p2, p3 in the same session
        ev("click", at(hours=1), **u1, products=["p1"]),
        ev("click", at(hours=2), **u1, products=["p1"]),
        ev("click", at(hours=3), **u1, products=["p2"]),
        ev("purchase", at(hours=5), unit_id="u1", variant="control", session_id="s1",
           order_id="o1", products=["p1", "p2", "p3"], prices=[10.0, 20.0, 30.0]),
        # the same order reported again under another idempotency key: counted once
        ev("purchase", at(hours=5), unit_id="u1", variant="control", session_id="s1",
           order_id="o1", products=["p1", "p2", "p3"], prices=[10.0, 20.0, 30.0]),
        # u2: clicks 14 d + 1 s, exactly 14 d and 14 d - 1 s before a purchase in a new session
        ev("click", at(days=1, seconds=-1), **u2, products=["p4"]),
        ev("click", at(days=1), **u2, products=["p5"]),
        ev("click", at(days=1, seconds=1), **u2, products=["p6"]),
        ev("purchase", at(days=15), unit_id="u2", variant="treat", session_id="s3",
           order_id="o2", products=["p4", "p5", "p6"]),
        # u3 buys p7 an hour before clicking it: a purchase before any click
        ev("purchase", at(hours=1), unit_id="u3", variant="control", session_id="s4",
           order_id="o3", products=["p7"], prices=[5.0]),
        ev("click", at(hours=2), **u3, products=["p7"]),
        # out of order: the click on p9 arrives after the purchase but happened before it
        ev("purchase", at(hours=4), unit_id="u3", variant="control", session_id="s4",
           order_id="o4", products=["p9"], prices=[7.0]),
        ev("click", at(hours=3), **u3, products=["p9"]),
        # an orphan click (unknown recommendation) on p8, which u1 then buys
        ev("click", at(hours=4), unit_id="u1", session_id="s1", recommendation_id="gone",
           products=["p8"], orphan=True),
        ev("purchase", at(hours=6), unit_id="u1", variant="control", session_id="s1",
           order_id="o5", products=["p8"], prices=[1.0]),
        # an orphan impression of an expired recommendation
        ev("impression", at(days=40), unit_id="u1", recommendation_id="r1", products=["p1"],
           orphan=True),
        # holdout u4 buys p1 (clicked by u1, not by u4: never credited)
        ev("purchase", at(hours=2), unit_id="u4", variant="holdout", session_id="s9",
           order_id="o6", products=["p1"], prices=[50.0]),
    ]
    return make_frame(events)


def _by_variant(table: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["variant"]: row for row in table.iter_rows(named=True)}


def test_attribution_credits_each_line_once_within_the_window():
    sales = attribute_sales(experiment_events(thesis_log(), PARAMS))
    credited = {(r["order_id"], r["product_id"]): r["variant"] for r in sales.iter_rows(named=True)}
    assert credited == {
        ("o1", "p1"): "control",  # clicked twice, credited once (one line)
        ("o1", "p2"): "control",
        ("o1", "p3"): None,       # bought, never clicked
        ("o2", "p4"): None,       # clicked 14 d + 1 s before
        ("o2", "p5"): None,       # clicked exactly 14 d before: not "less than 14 days"
        ("o2", "p6"): "treat",    # clicked 14 d - 1 s before
        ("o3", "p7"): None,       # purchase before the click
        ("o4", "p9"): "control",  # click logged late but earlier in ts
        ("o5", "p8"): None,       # orphan click
        ("o6", "p1"): None,       # another unit's click
    }
    o1p1 = sales.filter((pl.col("order_id") == "o1") & (pl.col("product_id") == "p1"))
    assert o1p1["variant_click_ts"][0] == at(hours=2)  # the latest qualifying click


def test_same_session_rule_ignores_the_product_and_later_sessions():
    sales = attribute_sales(experiment_events(thesis_log(), PARAMS))
    naive = {(r["order_id"], r["product_id"]): r["session_variant"]
             for r in sales.iter_rows(named=True)}
    assert naive[("o1", "p3")] == "control"  # never clicked, still credited
    assert naive[("o5", "p8")] == "control"  # s1 had control clicks before 6 h
    assert naive[("o2", "p6")] is None       # bought in a later session
    assert naive[("o3", "p7")] is None       # the session's click came after the purchase
    assert naive[("o4", "p9")] == "control"


def test_window_is_configurable():
    sales = attribute_sales(experiment_events(thesis_log(), PARAMS), window_days=15)
    o2 = sales.filter(pl.col("order_id") == "o2").sort("product_id")
    assert o2["variant"].to_list() == ["treat", "treat", "treat"]


def test_variant_kpis_hand_counted():
    tables = compute_kpis(thesis_log(), PARAMS)
    assert tables.variants["variant"].to_list() == ["control", "treat", "holdout"]
    v = _by_variant(tables.variants)
    c, t, h = v["control"], v["treat"], v["holdout"]
    assert (c["units"], c["recommendations"], c["fallbacks"]) == (2, 2, 0)
    assert (c["impressions"], c["clicks"], c["sales"], c["same_session_sales"]) == (10, 5, 3, 5)
    assert c["ctr"] == pytest.approx(0.5)
    assert c["conversion"] == pytest.approx(0.3)
    assert c["same_session_conversion"] == pytest.approx(0.5)
    assert c["attributed_revenue"] == pytest.approx(37.0)  # p1 10 + p2 20 + p9 7
    assert c["revenue_per_impression"] == pytest.approx(3.7)
    assert (c["orders"], c["purchased_items"], c["revenue"]) == (4, 6, 73.0)
    assert c["revenue_per_unit"] == pytest.approx(36.5)
    assert (t["units"], t["recommendations"], t["fallbacks"]) == (1, 1, 1)
    assert (t["impressions"], t["clicks"], t["sales"], t["same_session_sales"]) == (4, 3, 1, 0)
    assert t["ctr"] == pytest.approx(0.75)
    assert t["conversion"] == pytest.approx(0.25)
    assert t["revenue_per_impression"] == 0.0  # the credited p6 has no price
    assert t["priced_sales"] == 0
    assert (h["units"], h["impressions"], h["orders"], h["revenue"]) == (1, 0, 1, 50.0)
    assert h["ctr"] is None and h["conversion"] is None
    assert h["revenue_per_unit"] == pytest.approx(50.0)


def test_daily_kpis_use_the_utc_day_of_ts():
    daily = compute_kpis(thesis_log(), PARAMS).daily
    rows = {(r["variant"], r["day"].day): r for r in daily.iter_rows(named=True)}
    assert set(rows) == {("control", 1), ("treat", 1), ("treat", 2), ("treat", 16)}
    assert (rows["control", 1]["impressions"], rows["control", 1]["clicks"]) == (10, 5)
    assert (rows["treat", 1]["impressions"], rows["treat", 1]["clicks"]) == (4, 1)
    assert (rows["treat", 2]["clicks"], rows["treat", 2]["ctr"]) == (2, None)
    assert (rows["treat", 16]["sales"], rows["treat", 16]["impressions"]) == (1, 0)


def test_unit_kpis_one_row_per_unit():
    units = compute_kpis(thesis_log(), PARAMS).units
    got = {r["unit_id"]: (r["variant"], r["impressions"], r["clicks"], r["sales"],
                          r["attributed_revenue"], r["same_session_sales"], r["orders"],
                          r["revenue"]) for r in units.iter_rows(named=True)}
    assert got == {
        "u1": ("control", 5, 3, 2, 30.0, 4, 2, 61.0),
        "u2": ("treat", 4, 3, 1, 0.0, 0, 1, 0.0),
        "u3": ("control", 5, 2, 1, 7.0, 1, 2, 12.0),
        "u4": ("holdout", 0, 0, 0, 0.0, 0, 1, 50.0),
    }


def test_unit_days_split_a_unit_by_utc_day():
    days = compute_kpis(thesis_log(), PARAMS).unit_days.filter(pl.col("unit_id") == "u2")
    got = [(r["day"].day, r["impressions"], r["clicks"], r["sales"], r["orders"])
           for r in days.iter_rows(named=True)]
    assert got == [(1, 4, 1, 0, 0), (2, 0, 2, 0, 0), (16, 0, 0, 1, 1)]


def test_feedback_counts():
    counts = compute_kpis(thesis_log(), PARAMS).counts
    assert counts["orphans"] == {"impression": {"unknown": 0, "expired": 1},
                                 "click": {"unknown": 1, "expired": 0}}
    assert counts["orphan_total"] == 2
    assert counts["fallbacks"] == {"control": 0, "treat": 1}
    assert counts["duplicate_orders"] == 1
    assert counts["unassigned_purchases"] == 0


def test_no_prices_means_no_revenue_kpi():
    frame = make_frame([
        ev("impression", at(), unit_id="u1", variant="control", recommendation_id="r1"),
        ev("click", at(hours=1), unit_id="u1", variant="control", products=["p1"]),
        ev("purchase", at(hours=2), unit_id="u1", variant="control", products=["p1"]),
    ])
    v = _by_variant(compute_kpis(frame, PARAMS).variants)
    assert v["control"]["sales"] == 1
    assert v["control"]["revenue_per_impression"] is None


def test_unknown_variant_is_named_with_its_row():
    frame = make_frame([ev("assignment", at(), unit_id="u1", variant="control"),
                        ev("assignment", at(), unit_id="u2", variant="gru4rec")])
    with pytest.raises(DataError, match=r"unknown variant 'gru4rec'.*row 2"):
        compute_kpis(frame, PARAMS)


def test_missing_column_and_other_experiment_are_refused():
    with pytest.raises(DataError, match="column 'orphan'"):
        compute_kpis(thesis_log().drop("orphan"), PARAMS)
    with pytest.raises(DataError, match="no events of experiment 'exp'"):
        compute_kpis(make_frame([ev("assignment", at(), unit_id="u1")], experiment="other"),
                     PARAMS)


def test_prices_must_match_products():
    frame = make_frame([ev("purchase", at(), unit_id="u1", variant="control",
                           products=["p1", "p2"], prices=[1.0])])
    with pytest.raises(DataError, match=r"number of prices.*row 1"):
        compute_kpis(frame, PARAMS)


def test_params_refuse_an_unknown_control():
    with pytest.raises(ConfigError, match="control variant 'ctl'"):
        ExperimentParams(name="exp", control="ctl", weights={"a": 1.0})
