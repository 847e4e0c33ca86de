"""The next-n protocol on a hand-made first-order model (ranks computed by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluation.next_n import evaluate_next_n, prefix_cases
from sessionrec.models.baselines.pop import Popularity

# Scores of items 0..3 after clicking item i (row i).
T = torch.tensor([[0.0, 3.0, 2.0, 1.0],
                  [1.0, 0.0, 3.0, 2.0],
                  [2.0, 1.0, 0.0, 3.0],
                  [3.0, 1.0, 1.0, 0.0]])


class LastItem:
    """State = one-hot of the last known click; scores = its row of T."""

    n_items_ = 4
    state_size = 4

    def initial_state(self, n):
        return torch.zeros((n, 4))

    def advance(self, state, items):
        items = torch.as_tensor(items).reshape(-1)
        known = (items >= 0) & (items < 4)
        new = torch.nn.functional.one_hot(items.clamp(0, 3), 4).float()
        return torch.where(known.unsqueeze(1), new, state)

    def scores_from_state(self, state):
        return state @ T


def test_prefix_cases():
    test = Sessions.from_lists([[0, 1, 3, 2], [5], [2, 1]], 6)
    ends, sess, length = prefix_cases(test)
    assert ends.tolist() == [0, 1, 2, 5]
    assert sess.tolist() == [0, 0, 0, 2]
    assert length.tolist() == [1, 2, 3, 1]


def test_ranks_by_hand():
    # Session 0 1 3 2. Prefix [0]: h1 target 1 in T[0] -> rank 1; top-1 fed = 1;
    # h2 target 3 in T[1] = (1, 0, 3, 2) -> rank 2; fed 2; h3 target 2 in T[2] -> rank 4.
    # Prefix [0 1]: h1 target 3 in T[1] -> 2; fed 2; h2 target 2 in T[2] -> 4.
    # Prefix [0 1 3]: h1 target 2 in T[3] = (3, 1, 1, 0): item 0 above, item 1 tied -> 3
    # (pessimistic), 2 (optimistic).
    test = Sessions.from_lists([[0, 1, 3, 2]], 4)
    res = evaluate_next_n(LastItem(), test, max_horizon=3, ks=(1, 2))
    got = sorted(zip(res.positions.tolist(), res.horizon.tolist(), res.ranks.tolist(), strict=True))
    assert got == [(1, 1, 1.0), (1, 2, 2.0), (1, 3, 4.0), (2, 1, 2.0), (2, 2, 4.0),
                   (3, 1, 3.0)]
    m = res.metrics()
    assert m["h1/recall@2"] == pytest.approx(2 / 3)  # ranks 1, 2, 3
    assert m["h1/mrr@2"] == pytest.approx((1 + 1 / 2) / 3)
    assert m["h2/recall@2"] == pytest.approx(1 / 2)  # ranks 2, 4
    assert m["h3/mrr@2"] == 0.0
    assert res.counts() == {"h1": 3, "h2": 2, "h3": 1}
    assert res.by_position()["h1"]["3"] == {"n": 1, "recall@1": 0.0, "mrr@1": 0.0,
                                            "recall@2": 0.0, "mrr@2": 0.0}
    opt = evaluate_next_n(LastItem(), test, max_horizon=1, ties="optimistic")
    assert sorted(opt.ranks.tolist()) == [1.0, 2.0, 2.0]


def test_unknown_targets_are_dropped_and_counted():
    test = Sessions.from_lists([[0, 1, 7]], 8)  # the model knows items 0..3 only
    res = evaluate_next_n(LastItem(), test, max_horizon=2)
    assert res.dropped_unknown_targets == 2  # h1 of prefix [0 1], h2 of prefix [0]
    assert np.array_equal(np.sort(res.horizon), [1])


def test_a_model_without_recurrent_state_is_refused():
    with pytest.raises(ConfigError, match="recurrent session state"):
        evaluate_next_n(Popularity(), Sessions.from_lists([[0, 1]], 4))
