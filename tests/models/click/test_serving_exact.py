"""The served ALPINE scores (item-vector table, one-row broadcast attention, memoised LSTM
states resumed from a prefix) equal a fresh computation over random histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.batching.behaviours import BEHAVIOURS, UserRows, make_batch
from sessionrec.models.neural.click import click_models
from sessionrec.models.neural.graph_lstm import GraphLSTM

N_ITEMS, N_USERS, MAX_LEN = 40, 5, 6


def fitted(**params):
    """An ALPINE with random (not small) weights over random item features with ties."""
    rng = np.random.default_rng(0)
    features = rng.integers(0, 4, size=(N_ITEMS, 5)).astype(np.int64)
    model = click_models()["alpine"](max_len=MAX_LEN, embedding=8, hidden=8, mlp=8,
                                     progress=False, **params)
    model.item_ids_ = np.arange(N_ITEMS)
    model.user_ids_ = np.arange(N_USERS)
    model.features_, model.sizes_ = features, (4, 4, 4, 4, 4)
    model.net_ = model._new_net(features, model.sizes_, N_USERS)
    with torch.no_grad():
        for p in model.net_.parameters():
            p.normal_(0.0, 0.5)
    model.net_.eval()
    return model


def request(user: int, history: dict, targets: np.ndarray, now: int) -> UserRows:
    n = len(targets)
    return UserRows(user, *(history[b] for b in BEHAVIOURS), targets,
                    np.full(n, now, np.int64), np.zeros(n, np.int64), np.full(n, -1, np.int64))


def reference(model, row: UserRows, other: UserRows) -> np.ndarray:
    """Logits of ``row``'s targets computed afresh: no inference mode (no table, no memo),
    batched after a longer row (gathered attention, padded sequences)."""
    with torch.no_grad():
        batch = make_batch([other, row], len(model.item_ids_), model.params.max_len)
        out = model.net_.logits(batch).numpy()
    return out[len(other.target_items):]


def growing_histories(rng, steps: int):
    """Histories of one user after each of ``steps`` rounds of 0-3 new events (past
    MAX_LEN: the oldest events drop out)."""
    hist = {b: (np.zeros(0, np.int64), np.zeros(0, np.int64)) for b in BEHAVIOURS}
    ts = 1_000
    for _ in range(steps):
        yield hist
        for _ in range(rng.integers(0, 4)):
            b = BEHAVIOURS[rng.choice(4, p=[0.45, 0.4, 0.1, 0.05])]
            ts += int(rng.integers(1, 50))
            items, times = hist[b]
            hist = {**hist, b: (np.append(items, rng.integers(0, N_ITEMS))[-MAX_LEN:],
                                np.append(times, ts)[-MAX_LEN:])}


@pytest.mark.parametrize("params", [{}, {"neighbours": 3}, {"graph": False},
                                    {"similarity": "vectors"}, {"unclick": False}])
def test_served_scores_equal_a_fresh_computation(params):
    model = fitted(**params)
    rng = np.random.default_rng(1)
    other = request(0, {b: (rng.integers(0, N_ITEMS, 9), np.arange(9) * 10)
                        for b in BEHAVIOURS}, rng.integers(0, N_ITEMS, 3), 10**9)
    for user in (2, -1):  # known and unknown user
        for step, hist in enumerate(growing_histories(rng, 40)):
            row = request(user, hist, rng.choice(N_ITEMS, 25, replace=False), 10**7 + step)
            np.testing.assert_allclose(model.score_rows([row]), reference(model, row, other),
                                       atol=1e-5, rtol=0)
    memo = model.net_.interest.memo
    assert (memo is None) == (params.get("similarity") == "vectors")


def test_a_grown_history_runs_only_its_new_events(monkeypatch):
    model = fitted()
    ran = []
    run = GraphLSTM.run
    monkeypatch.setattr(GraphLSTM, "run", lambda self, x, *a: ran.append(x.shape[1]) or
                        run(self, x, *a))
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    hist = {b: empty for b in BEHAVIOURS} | {"click": (np.array([3, 5]), np.array([1, 2]))}
    targets = np.arange(10)
    model.score_rows([request(1, hist, targets, 100)])
    assert ran == [2, 1]  # clicks from scratch; the empty skip row (one padding position)
    ran.clear()
    model.score_rows([request(2, hist, targets, 100)])  # same history, another user
    assert ran == []
    hist["click"] = (np.array([3, 5, 7]), np.array([1, 2, 3]))
    model.score_rows([request(1, hist, targets, 100)])
    assert ran == [1]  # only the new click
    hist["click"] = (np.array([5, 7, 8, 9, 10, 11]), np.arange(6))  # capped: oldest dropped
    model.score_rows([request(1, hist, targets, 100)])
    assert ran == [1, 6]  # not a prefix any more: encoded afresh


def test_a_weight_change_empties_the_memo():
    model = fitted()
    rng = np.random.default_rng(3)
    hist = {b: (rng.integers(0, N_ITEMS, 4), np.arange(4)) for b in BEHAVIOURS}
    row = request(1, hist, np.arange(20), 100)
    before = model.score_rows([row])
    with torch.no_grad():
        model.net_.interest.lstm.wh.weight.mul_(-1.0)
        model.net_.items.ids.weight.add_(0.3)
    after = model.score_rows([row])
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, reference(model, row, row), atol=1e-5, rtol=0)
