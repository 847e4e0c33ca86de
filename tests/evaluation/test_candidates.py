"""Candidate-ranking metrics on hand-computed toys."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.evaluation.candidates import evaluate_candidates, per_user_auc
from sessionrec.evaluation.paired_users import compare_users, paired_t_test


def test_auc_counts_ties_as_wrong():
    users = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3])
    scores = np.array([0.9, 0.5, 0.5, 0.1, 0.3, 0.3, 0.2, 1.0, 2.0])
    labels = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1])
    ids, auc = per_user_auc(users, scores, labels)
    # user 1: pairs (.9>.5) (.9>.1) (.5>.5 tie: 0) (.5>.1) = 3/4; user 2: (.3>.3 no) (.3>.2) =
    # 1/2; user 3 has no negative and no AUC
    assert ids.tolist() == [1, 2]
    assert auc.tolist() == [0.75, 0.5]


def test_precision_recall_f_at_k():
    users = np.array([1, 1, 1, 1, 2, 2, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.1])
    labels = np.array([0, 1, 1, 0, 1, 0, 0])
    r = evaluate_candidates(users, scores, labels, ks=(1, 2))
    m = r.metrics()
    # user 1 top1 = [0] top2 = [0, 1]: P@1 0, P@2 1/2, R@1 0, R@2 1/2
    # user 2: the tie .5/.5 puts the non-click first: P@1 0, P@2 1/2, R@2 1
    assert m["p@1"] == 0.0 and m["r@1"] == 0.0
    assert m["p@2"] == pytest.approx(0.5)
    assert m["r@2"] == pytest.approx(0.75)
    assert m["f@2"] == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    # AUC: user 1 (.8 > .6, .7 > .6; not > .9) = 2/4; user 2 (.5 vs .5 tie, .5 > .1) = 1/2
    assert m["auc"] == pytest.approx(0.5)


def test_paired_t_test_by_hand():
    a = np.array([0.6, 0.7, 0.8])
    b = np.array([0.5, 0.5, 0.6])
    d = a - b  # 0.1, 0.2, 0.2: mean 1/6, sd 0.0577, t = mean / (sd / sqrt 3) = 5.0
    t, p = paired_t_test(a, b)
    assert t == pytest.approx(5.0, rel=1e-6)
    assert p == pytest.approx(0.0377, abs=1e-3)
    assert d.mean() > 0


def test_compare_users_refuses_other_users():
    a = pl.DataFrame({"user_idx": [1, 2, 3], "auc": [0.6, 0.7, 0.8]})
    b = pl.DataFrame({"user_idx": [1, 2, 4], "auc": [0.5, 0.5, 0.6]})
    with pytest.raises(Exception, match="same users"):
        compare_users(a, b)
    res = compare_users(a, pl.DataFrame({"user_idx": [3, 2, 1], "auc": [0.6, 0.5, 0.5]}))
    assert res.difference == pytest.approx(1 / 6)  # joined by user, not by position
    assert res.t == pytest.approx(5.0, rel=1e-6)
