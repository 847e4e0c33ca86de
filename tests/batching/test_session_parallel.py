"""Session-parallel batching: hand-walked schedules."""

import numpy as np
import pytest

from sessionrec.batching.session_parallel import (
    session_order,
    session_parallel,
    trainable_sessions,
)


def offsets_of(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def walk(lengths, batch_size, order=None, min_lanes=1):
    offsets = offsets_of(lengths)
    order = np.arange(len(lengths)) if order is None else np.asarray(order)
    return list(session_parallel(offsets, order, batch_size, min_lanes))


def test_two_lanes_hand_computed():
    # Sessions: s0 = events 0..2 (3), s1 = 3..4 (2), s2 = 5..8 (4), s3 = 9..10 (2).
    steps = walk([3, 2, 4, 2], 2)
    inputs = [b.inputs.tolist() for b in steps]
    # Lane 0 walks s0 (0, 1) then s3 (9); lane 1 walks s1 (3) then s2 (5, 6, 7).
    assert inputs == [[0, 3], [1, 5], [9, 6], [7]]
    assert [b.targets.tolist() for b in steps] == [[1, 4], [2, 6], [10, 7], [8]]
    assert [b.reset.tolist() for b in steps] == [[True, True], [False, True], [True, False],
                                                 [False]]
    # Lane 0 finished s3 with nothing left to start: the batch narrows to lane 1.
    assert steps[3].keep.tolist() == [1]
    assert [b.sessions.tolist() for b in steps] == [[0, 1], [0, 2], [3, 2], [2]]


def test_every_pair_exactly_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 9, size=200)
    offsets = offsets_of(lengths)
    seen = np.concatenate([b.inputs for b in walk(lengths, 16)])
    expected = np.concatenate([np.arange(offsets[s], offsets[s + 1] - 1)
                               for s in range(len(lengths))])
    assert np.array_equal(np.sort(seen), expected)


def test_reset_only_at_session_starts():
    lengths = [2, 5, 3, 2, 4]
    offsets = offsets_of(lengths)
    for b in walk(lengths, 3):
        starts = np.isin(b.inputs, offsets[:-1])
        assert np.array_equal(starts, b.reset)


def test_min_lanes_stops_early():
    steps = walk([2, 5], 2, min_lanes=2)
    # After the first step only one lane is alive: with min_lanes=2 the walk stops.
    assert len(steps) == 1


def test_more_lanes_than_sessions():
    steps = walk([3, 2], 8)
    assert len(steps[0].inputs) == 2


def test_rejects_short_sessions_and_bad_batch():
    with pytest.raises(ValueError, match="two events"):
        walk([1, 3], 2)
    with pytest.raises(ValueError, match="batch_size"):
        walk([3], 0)


def test_trainable_sessions_and_order():
    offsets = offsets_of([1, 3, 2, 1])
    assert trainable_sessions(offsets).tolist() == [1, 2]
    first_ts = np.array([50, 40, 10, 0])
    assert session_order(offsets, first_ts, np.array([1, 2])).tolist() == [2, 1]
    assert session_order(offsets, None, np.array([1, 2])).tolist() == [1, 2]
