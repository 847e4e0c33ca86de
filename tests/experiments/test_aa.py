"""A/A checks: the unit-level test holds its level, the naive one does not, SRM fires."""

from __future__ import annotations

import pytest

from sessionrec.experiments.aa import (
    binomial_range,
    hash_split,
    naive_impression_p_value,
    simulate_aa,
    simulate_peeking,
    srm_demo,
)
from sessionrec.experiments.assignment import bucket


def test_binomial_range_of_200_experiments_at_5_percent():
    # Binomial(200, 0.05): P(X <= 3) = 0.009 < 0.025 <= P(X <= 4) = 0.026;
    # P(X <= 15) = 0.956 < 0.975 <= P(X <= 16) = 0.976
    assert binomial_range(200, 0.05) == (4, 16)


def test_hash_split_uses_the_assignment_hash():
    in_a = hash_split("salt", 50, 0.3)
    assert in_a.tolist() == [bucket("salt", f"user:{i}") < 0.3 for i in range(50)]


def test_naive_z_test_by_hand():
    # 10/100 vs 20/100: pooled 0.15, se = sqrt(0.15 * 0.85 * 0.02) = 0.0505, z = 1.9803
    assert naive_impression_p_value(10, 100, 20, 100) == pytest.approx(0.04767, abs=1e-5)


def test_unit_level_test_holds_its_level_and_the_naive_one_does_not():
    result = simulate_aa(n_experiments=60, n_units=400, seed=1)
    assert result.binomial_low <= result.false_positives <= result.binomial_high
    assert result.within_range
    # intra-unit correlation 1/11 and ~19 impressions per unit weighted by size inflate the
    # variance ~2.6x: the naive test rejects far more often than 5%
    assert result.naive_false_positives > result.binomial_high
    assert result.srm_alarms == 0
    assert "within the 95% binomial range" in result.summary()


def test_simulation_is_seeded():
    assert simulate_aa(10, 100, seed=3) == simulate_aa(10, 100, seed=3)


def test_srm_fires_on_a_52_48_split_only():
    demo = srm_demo(n_units=20_000, skewed_share=0.52)
    assert demo.skewed.mismatch and demo.skewed.p_value < 0.001
    assert not demo.balanced.mismatch
    assert sum(demo.skewed.observed.values()) == 20_000
    assert "fires" in demo.summary()


def test_daily_peeking_inflates_false_positives_and_msprt_does_not():
    result = simulate_peeking(n_experiments=100, n_units=300, looks=14, seed=0)
    high = binomial_range(100, 0.05)[1]  # 10
    assert result.fixed_horizon <= high
    assert result.peeking >= result.fixed_horizon  # the last look is one of the looks
    assert result.peeking > high  # ~20% when stopping at the first daily p < 0.05
    assert result.always_valid <= high
