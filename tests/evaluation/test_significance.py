"""Bootstrap intervals: known answers for identical, shifted and clustered data."""

from __future__ import annotations

import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.errors import DataError
from sessionrec.evaluation import bootstrap_ci, compare_results, evaluate, paired_bootstrap
from sessionrec.evaluation.evaluator import EvalResult

from .test_evaluator import DESCENDING, TEST, TRAIN, NextIndex, fixed


def test_identical_models_differ_by_exactly_zero() -> None:
    a = np.random.default_rng(1).random(500)
    ci = paired_bootstrap(a, a.copy())
    assert ci.estimate == 0.0
    assert ci.low == 0.0 and ci.high == 0.0
    assert ci.p_value == 1.0


def test_a_clear_shift_excludes_zero() -> None:
    rng = np.random.default_rng(2)
    b = rng.random(400)
    a = b + 0.1 + rng.normal(0, 0.05, 400)
    ci = paired_bootstrap(a, b, n_boot=500)
    assert ci.estimate == pytest.approx(float((a - b).mean()))
    assert 0 < ci.low < ci.estimate < ci.high
    assert ci.p_value == pytest.approx(2 / 501)  # no replicate at or below 0
    reverse = paired_bootstrap(b, a, n_boot=500)
    assert reverse.high < 0 and reverse.estimate == pytest.approx(-ci.estimate)


def test_same_seed_same_result_other_seed_other_result() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(300), rng.random(300)
    cluster = rng.integers(0, 40, 300)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7, cluster=cluster) == paired_bootstrap(
        a, b, seed=7, cluster=cluster)
    assert paired_bootstrap(a, b, seed=7).low != paired_bootstrap(a, b, seed=8).low


def test_constant_values_have_a_point_interval() -> None:
    ci = bootstrap_ci(np.full(50, 0.25))
    assert (ci.estimate, ci.low, ci.high) == (0.25, 0.25, 0.25)


def test_mean_interval_covers_the_mean() -> None:
    values = np.tile([0.0, 1.0], 500)
    ci = bootstrap_ci(values, n_boot=400, alpha=0.1)
    assert ci.estimate == 0.5
    assert 0.45 < ci.low < 0.5 < ci.high < 0.55
    assert ci.n == 1000 and ci.n_clusters == 1000 and ci.n_boot == 400


def test_clusters_are_resampled_whole() -> None:
    # 20 sessions of 50 identical predictions: really 20 observations, not 1000.
    rng = np.random.default_rng(4)
    per_session = rng.random(20)
    cluster = np.repeat(np.arange(20), 50)
    values = per_session[cluster]
    naive = bootstrap_ci(values)
    clustered = bootstrap_ci(values, cluster=cluster)
    assert clustered.n_clusters == 20 and naive.n_clusters == 1000
    assert clustered.estimate == pytest.approx(naive.estimate)
    assert clustered.high - clustered.low > 4 * (naive.high - naive.low)
    # Equal-sized clusters: the same as bootstrapping the 20 session means.
    direct = bootstrap_ci(per_session, seed=0)
    assert clustered.low == pytest.approx(direct.low)
    assert clustered.high == pytest.approx(direct.high)


def test_many_blocks() -> None:
    values = np.random.default_rng(5).random(20_000)
    ci = bootstrap_ci(values, n_boot=300)
    assert ci.low < values.mean() < ci.high
    assert ci.high - ci.low < 0.02


def test_bad_input() -> None:
    with pytest.raises(DataError, match="differ in length"):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(DataError, match="empty"):
        bootstrap_ci(np.array([]))
    with pytest.raises(DataError, match="NaN"):
        bootstrap_ci(np.array([0.1, np.nan]))
    with pytest.raises(DataError, match="cluster"):
        bootstrap_ci(np.zeros(3), cluster=np.zeros(2))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(np.zeros(3), alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(np.zeros(3), n_boot=0)


def test_compare_results() -> None:
    a: EvalResult = evaluate(NextIndex().fit(TRAIN), TRAIN, TEST)
    b: EvalResult = evaluate(fixed(DESCENDING), TRAIN, TEST)
    ci = compare_results(a, b, "mrr@20", n_boot=200)
    # NextIndex ranks every target first; the fixed model gives ranks 2, 3, 1, 4.
    assert ci.estimate == pytest.approx(1 - (1 / 2 + 1 / 3 + 1 + 1 / 4) / 4)
    assert ci.n_clusters == 3  # sessions 0, 2 and 4
    other = evaluate(fixed(DESCENDING), TRAIN, Sessions.from_lists([[0, 1]], 5))
    with pytest.raises(DataError, match="same test targets"):
        compare_results(a, other)
