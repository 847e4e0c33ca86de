"""KPIs per placement, hand-counted on a small log."""

from __future__ import annotations

from sessionrec.experiments.kpis import ExperimentParams, attribute_sales, experiment_events
from sessionrec.experiments.placement_kpis import placement_kpis

from .test_kpis import at, ev, make_frame

PARAMS = ExperimentParams(name="exp", control="control", weights={"control": 0.5, "treat": 0.5})


def test_impressions_clicks_and_credited_sales_count_on_their_recommendations_placement():
    u1 = {"unit_id": "u1", "variant": "control", "session_id": "s1"}
    u2 = {"unit_id": "u2", "variant": "treat", "session_id": "s2"}
    frame = make_frame([
        # u1: a product-page list (r1) and a basket list (r2); clicks p1 on r1, p2 on r2
        ev("recommendation", at(0), recommendation_id="r1", placement="product_page",
           products=["p1", "p9"], **u1),
        ev("recommendation", at(1), recommendation_id="r2", placement="basket",
           products=["p2"], **u1),
        ev("impression", at(2), recommendation_id="r1", products=["p1", "p9"], **u1),
        ev("impression", at(2), recommendation_id="r2", products=["p2"], **u1),
        ev("click", at(3), recommendation_id="r1", products=["p1"], **u1),
        ev("click", at(4), recommendation_id="r2", products=["p2"], **u1),
        # u2: a home list (r3), seen twice, clicked once (p3); an old log's list (r4)
        ev("recommendation", at(5), recommendation_id="r3", placement="home",
           products=["p3"], **u2),
        ev("impression", at(6), recommendation_id="r3", products=["p3"], **u2),
        ev("impression", at(7), recommendation_id="r3", products=["p3"], **u2),
        ev("click", at(8), recommendation_id="r3", products=["p3"], **u2),
        ev("recommendation", at(9), recommendation_id="r4", products=["p4"], **u2),
        # u1 buys p2 (clicked on the basket list) and p7 (never clicked); u2 buys p3 (home)
        ev("purchase", at(10), order_id="o1", products=["p2", "p7"], prices=[5.0, 1.0], **u1),
        ev("purchase", at(11), order_id="o2", products=["p3"], prices=[2.0], **u2),
    ])
    events = experiment_events(frame, PARAMS)
    table = placement_kpis(events, attribute_sales(events), PARAMS.arms)
    rows = {(r["placement"], r["variant"]): r for r in table.to_dicts()}
    assert list(rows) == [("product_page", "control"), ("basket", "control"),
                          ("home", "treat"), ("unrecorded", "treat")]
    counts = {key: (r["recommendations"], r["impressions"], r["clicks"], r["sales"],
                    r["attributed_revenue"]) for key, r in rows.items()}
    assert counts == {("product_page", "control"): (1, 1, 1, 0, 0.0),
                      ("basket", "control"): (1, 1, 1, 1, 5.0),
                      ("home", "treat"): (1, 2, 1, 1, 2.0),
                      ("unrecorded", "treat"): (1, 0, 0, 0, 0.0)}
    assert rows["home", "treat"]["ctr"] == 0.5 and rows["home", "treat"]["conversion"] == 0.5
    assert rows["unrecorded", "treat"]["ctr"] is None
