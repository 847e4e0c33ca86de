"""KPIs of re-ranked lists (/v1/rank answers): list CTR and mean reciprocal position per
variant, their delta-method comparison with control, and the report's section.

Every expected number is counted by hand from :func:`rank_log`.
"""

from __future__ import annotations

import math

import pytest

from sessionrec.experiments.kpis import ExperimentParams
from sessionrec.experiments.rank_kpis import (
    compare_rank,
    rank_kpis,
    rank_lists,
    rank_summary,
    rank_units,
)
from sessionrec.experiments.report import _blocks, _rank_blocks, analyse, render_markdown

from .test_kpis import at, ev, make_frame

PARAMS = ExperimentParams(name="exp", control="control",
                          weights={"control": 0.5, "alpine": 0.5})


def rank_list(rid: str, unit: str, variant: str, products: list[str], model: str,
              fallback: bool = False):
    return ev("recommendation", at(), recommendation_id=rid, unit_id=unit, variant=variant,
              products=products, placement="rank", model=model, fallback=fallback)


def click(rid: str, unit: str, variant: str | None, product: str, orphan: bool = False):
    return ev("click", at(seconds=5), recommendation_id=rid, unit_id=unit, variant=variant,
              products=[product], orphan=orphan)


def rank_log():
    """control (request order): c1 lists r1 [a b c] (b clicked twice: position 2, once) and
    r2 [a b]; c2 r3 [x y z] (z: position 3); c3 r4 [a] (a click on q, not in the list).
    alpine: t1 r5 [b a c] (b: 1, c: 3) and r6 [a] (a: 1); t2 r7 [c b] (a fallback; only an
    orphan click). A /v1/events recommendation (placement product_page) is not a list."""
    events = [ev("assignment", at(), unit_id=u, variant=v)
              for u, v in (("c1", "control"), ("c2", "control"), ("c3", "control"),
                           ("t1", "alpine"), ("t2", "alpine"))]
    events += [
        rank_list("r1", "c1", "control", ["a", "b", "c"], "request-order"),
        rank_list("r2", "c1", "control", ["a", "b"], "request-order"),
        rank_list("r3", "c2", "control", ["x", "y", "z"], "request-order"),
        rank_list("r4", "c3", "control", ["a"], "request-order"),
        rank_list("r5", "t1", "alpine", ["b", "a", "c"], "alpine"),
        rank_list("r6", "t1", "alpine", ["a"], "alpine"),
        rank_list("r7", "t2", "alpine", ["c", "b"], "alpine", fallback=True),
        ev("recommendation", at(), recommendation_id="e1", unit_id="t2", variant="alpine",
           products=["a"], placement="product_page"),
        click("r1", "c1", "control", "b"), click("r1", "c1", "control", "b"),
        click("r3", "c2", "control", "z"), click("r4", "c3", "control", "q"),
        click("r5", "t1", "alpine", "b"), click("r5", "t1", "alpine", "c"),
        click("r6", "t1", "alpine", "a"), click("e1", "t2", "alpine", "a"),
        click("r7", "t2", None, "c", orphan=True),
    ]
    return make_frame(events)


def test_list_ctr_and_mean_reciprocal_position_per_variant():
    lists = rank_lists(rank_log())
    assert sorted(lists["recommendation_id"]) == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    table = {r["variant"]: r for r in rank_kpis(lists, PARAMS.arms).to_dicts()}
    control, alpine = table["control"], table["alpine"]
    assert (control["lists"], control["clicked_lists"], control["clicks"]) == (4, 2, 2)
    assert control["list_ctr"] == pytest.approx(2 / 4)
    assert control["mean_reciprocal_position"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert control["models"] == ["request-order"] and control["fallbacks"] == 0
    assert (alpine["lists"], alpine["clicked_lists"], alpine["clicks"]) == (3, 2, 3)
    assert alpine["list_ctr"] == pytest.approx(2 / 3)
    assert alpine["mean_reciprocal_position"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert alpine["models"] == ["alpine"] and alpine["fallbacks"] == 1


def test_rank_comparisons_use_the_delta_method_over_units():
    units = rank_units(rank_lists(rank_log()))
    found, skipped = compare_rank(units, "control", ["control", "alpine"])
    (ctr,) = found
    assert ctr.kpi == "rank_list_ctr" and ctr.variant == "alpine"
    # control units (clicked lists / lists): c1 1/2, c2 1/1, c3 0/1 -> R = 1/2, residuals
    # 0, 1/2, -1/2: Var = (1/2) / (2 * 3 * (4/3)^2) = 3/64. alpine: t1 2/2, t2 0/1 -> R = 2/3,
    # residuals 2/3, -2/3: Var = (8/9) / (1 * 2 * (3/2)^2) = 16/81.
    assert ctr.delta.diff == pytest.approx(2 / 3 - 1 / 2)
    assert ctr.delta.se == pytest.approx(math.sqrt(3 / 64 + 16 / 81))
    assert (ctr.delta.n_control, ctr.delta.n_variant) == (3, 2)
    assert ctr.p_holm == pytest.approx(ctr.delta.p_value)  # a family of one
    # alpine has one unit with clicks (t1): the reciprocal position is not compared
    assert skipped == ["rank_mean_reciprocal_position of alpine: not compared (variant "
                       "'alpine' has 1 unit(s) with clicks; the unit-level test needs at "
                       "least 2)"]


def test_the_report_of_a_rank_only_log_has_the_rank_section():
    payload = analyse(rank_log(), PARAMS, n_boot=0, sequential=False)
    assert payload["comparisons"] == []  # no impressions: CTR and conversion not compared
    rank = payload["rank"]
    assert [v["variant"] for v in rank["variants"]] == ["control", "alpine"]
    assert rank["comparisons"][0]["verdict"].startswith("alpine vs control: no significant "
                                                        "difference in ranked-list CTR")
    text = render_markdown(_blocks(payload, []))
    assert "## Re-ranked lists (/v1/rank)" in text
    assert "| alpine | alpine | 3 | 1 | 2 | 3 | 66.67% | 0.778 |" in text


def test_a_log_without_rank_lists_has_no_rank_section():
    from .test_kpis import thesis_log

    assert rank_summary(thesis_log(), "control", ["control", "treat"]) is None
    assert _rank_blocks(None) == []
