import math

import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import SessionKNN


def sessions_at(sessions: list[list[int]], times: list[int], n_items: int) -> Sessions:
    """Sessions whose events all happen at the given per-session time."""
    lengths = [len(s) for s in sessions]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sessions(
        items=np.array([i for s in sessions for i in s], dtype=np.int64),
        offsets=offsets,
        ts=np.repeat(np.array(times, dtype=np.int64), lengths),
        users=np.full(len(sessions), -1, dtype=np.int64),
        session_ids=np.arange(len(sessions)),
        n_items=n_items,
    )


# session times make s2 the most recent, then s1, then s0
TRAIN = sessions_at([[0, 1, 2], [1, 2], [2, 3]], [100, 200, 300], n_items=5)
S0, S1, S2 = 2 / math.sqrt(6), 1.0, 0.5  # cosine of prefix {1, 2} with each session


def test_scores_sum_neighbour_similarities():
    scores = SessionKNN().fit(TRAIN).score([[1, 2]]).numpy()[0]
    expected = [S0, S0 + S1, S0 + S1 + S2, S2, 0.0]
    assert scores.tolist() == pytest.approx(expected)
    assert scores[4] == 0.0  # in no neighbour: exactly zero


def test_k_keeps_the_most_similar_neighbours():
    scores = SessionKNN(k=2).fit(TRAIN).score([[1, 2]]).numpy()[0]
    assert scores.tolist() == pytest.approx([S0, S0 + S1, S0 + S1, 0.0, 0.0])


def test_sample_takes_the_most_recent_sessions_by_time_not_by_position():
    scores = SessionKNN(sample_size=2).fit(TRAIN).score([[1, 2]]).numpy()[0]
    assert scores.tolist() == pytest.approx([0.0, S1, S1 + S2, S2, 0.0])
    # reversing the times makes s0 and s1 the most recent pair instead
    older = sessions_at([[0, 1, 2], [1, 2], [2, 3]], [300, 200, 100], n_items=5)
    scores = SessionKNN(sample_size=2).fit(older).score([[1, 2]]).numpy()[0]
    assert scores.tolist() == pytest.approx([S0, S0 + S1, S0 + S1, 0.0, 0.0])


def test_repeated_prefix_items_count_once_and_batch_rows_are_independent():
    model = SessionKNN().fit(TRAIN)
    batch = model.score([[3], [1, 2, 1], [1, 2]]).numpy()
    np.testing.assert_array_equal(batch[1], batch[2])
    # prefix {3}: only s2 shares it, cosine 1 / sqrt(1 * 2)
    assert batch[0].tolist() == pytest.approx([0, 0, 1 / math.sqrt(2), 1 / math.sqrt(2), 0])
