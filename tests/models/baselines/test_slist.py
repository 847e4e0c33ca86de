"""SLIST (Choi et al. 2021): the closed forms on 3-item toys, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import SessionRecError
from sessionrec.models.baselines.slist import SLIST

PLAIN = {"normalise": "none", "reg": 1.0}


def test_slis_closed_form_by_hand():
    # X = [[1,1,0],[0,1,1]]; G + I = [[2,1,0],[1,3,1],[0,1,2]], det 8,
    # P = [[5,-2,1],[-2,4,-2],[1,-2,5]] / 8; the target is X itself, so C = 0.
    train = Sessions.from_lists([[0, 1], [1, 2]], 3)
    # ξ = 10 is never reached: μ = λ, B = I - P
    b = SLIST(alpha=1.0, epsilon=10.0, **PLAIN).fit(train).score([[0]])
    torch.testing.assert_close(b, torch.tensor([[3 / 8, 2 / 8, -1 / 8]]))
    # ξ = 0: μ_j = 1 / P_jj, a zero diagonal (EASE): B[0] = [0, (2/8)/(4/8), -(1/8)/(5/8)]
    b = SLIST(alpha=1.0, epsilon=0.0, **PLAIN).fit(train).score([[0]])
    torch.testing.assert_close(b, torch.tensor([[0.0, 0.5, -0.2]]))


def test_slit_closed_form_by_hand():
    # [0,1,2] -> rows t=0: {0} -> {1,2}; t=1: {0,1} -> {2}. S = [[1,0,0],[1,1,0]],
    # T = [[0,1,1],[0,0,1]]; P = (SᵀS + I)⁻¹ = [[.4,-.2,0],[-.2,.6,0],[0,0,1]],
    # SᵀT = [[0,1,2],[0,0,1],[0,0,0]], B = P SᵀT: B[0] = [0,.4,.6], B[1] = [0,-.2,.2].
    model = SLIST(alpha=0.0, **PLAIN).fit(Sessions.from_lists([[0, 1, 2]], 3))
    torch.testing.assert_close(model.score([[0, 1]]), torch.tensor([[0.0, 0.2, 0.8]]))
    # predict_weight δ = 1: the older item weighs exp(-1)
    train = Sessions.from_lists([[0, 1, 2]], 3)
    model = SLIST(alpha=0.0, predict_weight=1.0, **PLAIN).fit(train)
    want = np.exp(-1) * np.array([0, .4, .6]) + np.array([0, -.2, .2])
    want = torch.from_numpy(want[None].astype(np.float32))
    torch.testing.assert_close(model.score([[0, 1]]), want)


def test_slist_is_the_ridge_solution_of_the_stacked_rows():
    rng = np.random.default_rng(0)
    sessions = [list(rng.integers(0, 5, size=rng.integers(2, 6))) for _ in range(30)]
    train = Sessions.from_lists(sessions, 5)
    model = SLIST(alpha=0.3, train_weight=2.0, session_weight=0.01, reg=3.0).fit(train)
    m, t, w = model._rows(train)
    m, t = m.toarray(), t.toarray()
    b = np.linalg.solve(m.T @ np.diag(w) @ m + 3.0 * np.eye(5), m.T @ np.diag(w) @ t)
    np.testing.assert_allclose(model.weights_.numpy(), b, rtol=1e-5, atol=1e-6)
    assert w.min() < w.max()  # the session decay is on


def test_a_catalogue_too_large_is_refused_with_the_memory_it_needs():
    train = Sessions.from_lists([[0, 1]], 42_988)
    with pytest.raises(SessionRecError, match=r"42,988 items need .* about 44.4 GB .*7.4 GB "
                                              r"per float32 matrix.*max_memory_gb = 4"):
        SLIST().fit(train)
