"""Experiment statistics against hand-computed values and textbook tables."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from sessionrec.errors import DataError
from sessionrec.experiments.stats import (
    cluster_bootstrap_diff,
    compare_to_control,
    delta_method_diff,
    holm,
    mde_two_proportions,
    msprt_p_values,
    power_two_proportions,
    ratio_and_variance,
    sample_size_two_proportions,
    srm_check,
)

# control units (impressions, clicks): (2, 1), (4, 1), (4, 3): R = 5/10 = 0.5, residuals
# y - R x = 0, -1, 1 -> Var = 2 / ((3 - 1) * 3 * (10/3)^2) = 0.03.
# variant units: (5, 3), (5, 4): R = 0.7, residuals -0.5, 0.5 -> Var = 0.5 / (1 * 2 * 25) = 0.01.
C_IMP, C_CLK = [2, 4, 4], [1, 1, 3]
V_IMP, V_CLK = [5, 5], [3, 4]


def test_ratio_variance_by_hand():
    ratio, var = ratio_and_variance(C_CLK, C_IMP)
    assert ratio == pytest.approx(0.5)
    assert var == pytest.approx(0.03)


def test_delta_method_difference_by_hand():
    r = delta_method_diff(V_CLK, V_IMP, C_CLK, C_IMP)
    assert (r.control, r.variant, r.diff) == pytest.approx((0.5, 0.7, 0.2))
    assert r.se == pytest.approx(0.2)  # sqrt(0.03 + 0.01)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(1.0))  # z = 1: 0.3173
    z = 1.959964
    assert (r.low, r.high) == pytest.approx((0.2 - z * 0.2, 0.2 + z * 0.2), abs=1e-6)
    assert r.rel_diff == pytest.approx(0.4)
    rel_se = math.sqrt(0.01 / 0.25 + 0.49 * 0.03 / 0.0625)  # 0.5246
    assert (r.rel_low, r.rel_high) == pytest.approx((0.4 - z * rel_se, 0.4 + z * rel_se), abs=1e-6)
    assert (r.n_control, r.n_variant) == (3, 2)


def test_delta_method_needs_two_units():
    with pytest.raises(DataError, match="at least 2 units"):
        ratio_and_variance([1], [3])


def _clustered_arm(rng, n_units, rate):
    imps = rng.integers(1, 30, n_units)
    propensity = rng.beta(rate * 4, (1 - rate) * 4, n_units)
    return rng.binomial(imps, propensity).astype(float), imps.astype(float)


def test_bootstrap_agrees_with_delta_method_and_is_seeded():
    rng = np.random.default_rng(7)
    clk_v, imp_v = _clustered_arm(rng, 600, 0.12)
    clk_c, imp_c = _clustered_arm(rng, 600, 0.10)
    delta = delta_method_diff(clk_v, imp_v, clk_c, imp_c)
    (boot,) = cluster_bootstrap_diff(clk_v, imp_v, clk_c, imp_c, n_boot=2000, seed=3)
    assert boot.estimate == pytest.approx(delta.diff)
    width_delta, width_boot = delta.high - delta.low, boot.high - boot.low
    assert width_boot == pytest.approx(width_delta, rel=0.1)
    assert boot.n_boot == 2000 and boot.n_clusters == 1200
    (again,) = cluster_bootstrap_diff(clk_v, imp_v, clk_c, imp_c, n_boot=2000, seed=3)
    assert (again.low, again.high) == (boot.low, boot.high)


def test_bootstrap_several_metrics_and_no_variance():
    # every unit converts at exactly its arm's rate: all replicates give the same difference
    imp = np.arange(1.0, 13.0)  # 12 units: an empty Poisson resample has chance e^-12
    num_v = np.column_stack([imp * 0.5, imp * 0.25])
    num_c = np.column_stack([imp * 0.25, imp * 0.25])
    ctr, conv = cluster_bootstrap_diff(num_v, imp, num_c, imp, n_boot=200, seed=0)
    assert (ctr.estimate, ctr.low, ctr.high) == pytest.approx((0.25, 0.25, 0.25))
    assert ctr.n_boot == 200
    assert ctr.p_value == pytest.approx(2 / 201)  # no replicate on the far side of 0
    assert (conv.estimate, conv.low, conv.high) == pytest.approx((0.0, 0.0, 0.0))
    assert conv.p_value == 1.0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _units(rows):
    return pl.DataFrame(rows, schema=["variant", "impressions", "clicks", "sales",
                                      "attributed_revenue", "same_session_sales"], orient="row")


UNITS = _units([
    ("control", 2, 1, 0, 0.0, 0), ("control", 4, 1, 1, 0.0, 0), ("control", 4, 3, 0, 0.0, 0),
    ("treat", 5, 3, 1, 0.0, 0), ("treat", 5, 4, 1, 0.0, 0),
    ("treat", 0, 0, 0, 0.0, 0),  # a unit with nothing: left out
])


def test_compare_to_control_holm_over_all_comparisons():
    # conversion: control 1/10, residuals -0.2, 0.6, -0.4 -> Var 0.56 / 2 / (100/3) = 0.0084;
    # treat 2/10 with no residual -> z = 0.1 / sqrt(0.0084) = 1.0911, p = 0.27523.
    ctr, conv = compare_to_control(UNITS, "control", ["control", "treat"], n_boot=0)
    assert (ctr.kpi, ctr.variant, conv.kpi) == ("ctr", "treat", "conversion")
    assert ctr.delta.p_value == pytest.approx(0.317311, abs=1e-6)
    assert conv.delta.p_value == pytest.approx(0.275234, abs=1e-6)
    assert ctr.p_holm == pytest.approx(2 * 0.275234, abs=1e-5)
    assert conv.p_holm == pytest.approx(2 * 0.275234, abs=1e-5)
    assert not ctr.significant and ctr.bootstrap is None
    assert ctr.delta.n_variant == 2
    per_kpi = compare_to_control(UNITS, "control", ["treat"], n_boot=0, holm_family="kpi")
    assert per_kpi[0].p_holm == pytest.approx(0.317311, abs=1e-6)


def test_compare_names_the_arm_without_impressions():
    no_control = UNITS.filter(pl.col("variant") != "control")
    with pytest.raises(DataError, match="variant 'control' has no impressions"):
        compare_to_control(no_control, "control", ["treat"], n_boot=0)


def test_srm_fires_on_a_skewed_split():
    skewed = srm_check({"a": 10400, "b": 9600}, {"a": 0.5, "b": 0.5})
    assert skewed.chi2 == pytest.approx(32.0)  # 2 * 400^2 / 10000
    assert skewed.p_value == pytest.approx(stats.chi2.sf(32.0, 1))
    assert skewed.mismatch
    fine = srm_check({"a": 5020, "b": 4980}, {"a": 0.5, "b": 0.5})
    assert fine.chi2 == pytest.approx(0.16) and not fine.mismatch
    three = srm_check({"a": 500, "b": 250}, {"a": 0.5, "b": 0.25, "holdout": 0.25})
    assert three.expected == {"a": 375.0, "b": 187.5, "holdout": 187.5}
    assert three.dof == 2 and three.mismatch
    with pytest.raises(DataError, match=r"arms \['x'\]"):
        srm_check({"x": 3}, {"a": 1.0})


def test_sample_size_matches_the_textbook_formula():
    # 10% -> 12%: pbar = 0.11; (1.95996 * sqrt(2 * .11 * .89) + 0.84162 * sqrt(.09 + .1056))^2
    # / 0.02^2 = (0.86726 + 0.37222)^2 / 0.0004 = 3840.8 -> 3841 per arm
    assert sample_size_two_proportions(0.10, 0.02) == 3841
    # 5% baseline, +10% relative: 31,234 per arm (the common online calculators agree)
    assert sample_size_two_proportions(0.05, 0.10, relative=True) == 31234
    assert sample_size_two_proportions(0.10, 0.02, design_effect=2.0) == 7682
    assert power_two_proportions(0.10, 0.12, 3841) == pytest.approx(0.80, abs=1e-3)


def test_mde_inverts_the_sample_size():
    assert mde_two_proportions(0.10, 3841) == pytest.approx(0.02, abs=1e-4)
    assert mde_two_proportions(0.10, 7682, design_effect=2.0) == pytest.approx(0.02, abs=1e-4)
    with pytest.raises(ValueError, match="cannot reach power"):
        mde_two_proportions(0.10, 2)


def test_msprt_by_hand_and_monotone():
    # V = 1, tau2 = 1: Lambda = sqrt(1/2) exp(d^2 / 4): d = 2 -> 1.9221 (p 0.5203);
    # d = 1 -> 0.9080 (p stays 0.5203); d = 3 -> 6.7090 (p 0.1491)
    p = msprt_p_values([2.0, 1.0, 3.0], [1.0, 1.0, 1.0], tau2=1.0)
    assert p == pytest.approx([0.52026, 0.52026, 0.14906], abs=1e-5)
