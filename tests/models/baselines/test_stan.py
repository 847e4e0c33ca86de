import math

import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import STAN

from .test_sknn import sessions_at

DAY = 86_400


def test_three_decays_on_a_tiny_example():
    # s0 ended two days before the last training event, s1 is the last one
    train = sessions_at([[0, 1, 2, 3], [1, 4]], [0, 2 * DAY], n_items=6)
    model = STAN(lambda_spw=1.0, lambda_snh=1.0, lambda_inh=1.0).fit(train)
    scores = model.score([[2, 1]]).numpy()[0]
    # w1: item 1 (last) 1, item 2 exp(-1); l(s) = 2
    sim0 = (1 + math.exp(-1)) / math.sqrt(2 * 4) * math.exp(-2)  # recency exp(-2 days / 1)
    sim1 = 1 / math.sqrt(2 * 2)
    # anchor i* = item 1 (latest in the prefix), at position 1 of s0 and 0 of s1
    expected = [
        sim0 * math.exp(-1),          # item 0: one step from the anchor in s0
        sim0 + sim1,                  # item 1: the anchor itself in both
        sim0 * math.exp(-1),          # item 2: one step after it
        sim0 * math.exp(-2),          # item 3: two steps
        sim1 * math.exp(-1),          # item 4: one step after it in s1
        0.0,                          # item 5: in no neighbour
    ]
    assert scores.tolist() == pytest.approx(expected)
    assert scores[5] == 0.0


def test_nearest_occurrence_of_the_anchor_counts():
    # the anchor item 1 occurs at positions 0 and 3
    train = Sessions.from_lists([[1, 0, 2, 1, 3]], n_items=4)
    model = STAN(lambda_spw=1.0, lambda_inh=1.0).fit(train)
    scores = model.score([[1]]).numpy()[0]
    sim = 1 / math.sqrt(1 * 4)  # l(s) = 1, l(t) = 4 distinct items
    e = math.exp(-1)
    assert scores.tolist() == pytest.approx([sim * e, sim, sim * e, sim * e])


def test_latest_occurrence_sets_the_position_weight():
    train = Sessions.from_lists([[1, 5], [2, 6]], n_items=7)
    model = STAN(lambda_spw=1.0, lambda_inh=1.0, lambda_snh=1e9).fit(train)
    scores = model.score([[1, 2, 1]]).numpy()[0]
    # w1(1) = 1 (position 3 of 3), w1(2) = exp(-1/1) (position 2); l(s) = 2, l(t) = 2
    assert scores[1] == pytest.approx(1 / 2)
    assert scores[2] == pytest.approx(math.exp(-1) / 2)
    assert scores[5] == pytest.approx(math.exp(-1) / 2)  # one step from anchor 1 in s0


def test_k_keeps_the_neighbours_with_the_highest_decayed_similarity():
    train = sessions_at([[0, 1, 2, 3], [1, 4]], [0, 2 * DAY], n_items=6)
    model = STAN(k=1, lambda_spw=1.0, lambda_snh=1.0, lambda_inh=1.0).fit(train)
    scores = model.score([[2, 1]]).numpy()[0]
    # sim(s1) = 0.5 beats the recency-decayed sim(s0) ≈ 0.065
    assert scores.tolist() == pytest.approx([0, 0.5, 0, 0, 0.5 * math.exp(-1), 0])
