"""Click-to-sale lag: the latest earlier click on the product, quantiles, window share."""

from __future__ import annotations

import pytest

from sessionrec.experiments.lag import click_to_sale_lags, lag_summary, lag_text

from .test_kpis import at, ev, make_frame


def log():
    c = {"variant": "control", "recommendation_id": "r1", "session_id": "s1"}
    return make_frame([
        ev("click", at(0), unit_id="u1", products=["p1"], **c),
        ev("click", at(2), unit_id="u1", products=["p1"], **c),     # the latest before: 2
        ev("purchase", at(5), unit_id="u1", products=["p1", "p9"], variant="control",
           order_id="o1"),                                          # p1: 3 days; p9: no click
        ev("click", at(1), unit_id="u2", products=["p2"], **c),
        ev("purchase", at(21), unit_id="u2", products=["p2"], variant="control",
           order_id="o2"),                                          # 20 days
        ev("click", at(30), unit_id="u3", products=["p3"], **c),
        ev("purchase", at(29), unit_id="u3", products=["p3"], variant="control",
           order_id="o3"),                                          # bought before the click
        ev("purchase", at(6, hours=12), unit_id="u1", products=["p1"], variant="control",
           order_id="o4"),                                          # 4.5 days after day 2
    ])


def test_lags_from_the_latest_earlier_click_on_the_product():
    assert sorted(click_to_sale_lags(log()).to_list()) == [3.0, 4.5, 20.0]


@pytest.mark.parametrize("window, share", [(14, 2 / 3), (20, 1.0), (3, 1 / 3)])
def test_the_window_share(window, share):
    summary = lag_summary(click_to_sale_lags(log()), window)
    assert summary["linked_sales"] == 3 and summary["share_inside_window"] == pytest.approx(share)
    assert summary["quantiles_days"]["p50"] == 4.5
    assert [(h["from"], h["sales"]) for h in summary["histogram_days"]] == [(3, 1), (4, 1),
                                                                            (20, 1)]
    assert f"A {window}-day attribution window captures" in lag_text(summary)


def test_no_linked_sale():
    summary = lag_summary(click_to_sale_lags(make_frame([
        ev("purchase", at(1), unit_id="u", products=["p"], order_id="o")])), 14)
    assert summary["share_inside_window"] is None
    assert "cannot be measured" in lag_text(summary)
