"""User-parallel batching: hand-walked schedules."""

import numpy as np
import pytest

from sessionrec.batching.user_parallel import user_parallel, user_schedule


def offsets_of(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


# Six sessions: (user, length, start time) -> events
#   s0: user 5, 3 events, t=100 -> 0 1 2        s3: user 7, 1 event, t=60 -> 7 (skipped)
#   s1: user 7, 2 events, t=50  -> 3 4          s4: unknown, 2 events, t=5 -> 8 9
#   s2: user 5, 2 events, t=10  -> 5 6          s5: user 7, 3 events, t=200 -> 10 11 12
LENGTHS = [3, 2, 2, 1, 2, 3]
USERS = np.array([5, 7, 5, 7, -1, 7])
FIRST_TS = np.array([100, 50, 10, 60, 5, 200])


def schedule(**kw):
    return user_schedule(offsets_of(LENGTHS), USERS, FIRST_TS, **kw)


def walk(batch_size, min_lanes=1, sched=None):
    return list(user_parallel(offsets_of(LENGTHS), sched or schedule(), batch_size, min_lanes))


def test_schedule_groups_users_in_time_order():
    s = schedule()
    # Users by first session: the unknown user's s4 (t=5), user 5 (t=10), user 7 (t=50);
    # each user's sessions by start time; s3 (one event) is skipped.
    assert s.users.tolist() == [-1, 5, 7]
    assert s.sessions.tolist() == [4, 2, 0, 1, 5]
    assert s.user_offsets.tolist() == [0, 1, 3, 5]
    assert s.skipped == 1 and s.n_users == 3
    known = schedule(known_users_only=True)
    assert known.users.tolist() == [5, 7] and known.sessions.tolist() == [2, 0, 1, 5]


def test_unknown_users_are_one_user_per_session():
    s = user_schedule(offsets_of([2, 2, 2]), np.array([-1, -1, 3]), np.array([0, 1, 2]))
    assert s.users.tolist() == [-1, -1, 3]
    assert s.user_offsets.tolist() == [0, 1, 2, 3]


def test_two_lanes_hand_computed():
    steps = walk(2)
    # Lane 0: unknown user (s4: 8) then user 7 (s1: 3, then s5: 10, 11).
    # Lane 1: user 5 (s2: 5, then s0: 0, 1), then nothing is left and the lane is dropped.
    assert [b.inputs.tolist() for b in steps] == [[8, 5], [3, 0], [10, 1], [11]]
    assert [b.targets.tolist() for b in steps] == [[9, 6], [4, 1], [11, 2], [12]]
    assert [b.session_start.tolist() for b in steps] == [[True, True], [True, True],
                                                         [True, False], [False]]
    assert [b.user_start.tolist() for b in steps] == [[True, True], [True, False],
                                                      [False, False], [False]]
    assert [b.sessions.tolist() for b in steps] == [[4, 2], [1, 0], [5, 0], [5]]
    assert [b.users.tolist() for b in steps] == [[-1, 5], [7, 5], [7, 5], [7]]
    assert [None if b.keep is None else b.keep.tolist() for b in steps] == [None, None, None,
                                                                            [0]]


def test_epoch_ends_only_when_every_user_is_done():
    # One user with a long history beside short ones: the walk narrows to that lane and
    # finishes it (the original implementation stopped when the first lane ran dry).
    lengths = [2, 2, 2, 2, 2, 2]
    users = np.array([0, 1, 1, 1, 1, 1])
    sched = user_schedule(offsets_of(lengths), users, np.arange(6))
    steps = list(user_parallel(offsets_of(lengths), sched, 2))
    assert [b.inputs.tolist() for b in steps] == [[0, 2], [4], [6], [8], [10]]
    assert steps[1].keep.tolist() == [1]


def test_every_pair_once_and_flags_match_the_schedule():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 6, size=300)
    users = rng.integers(-1, 40, size=300)
    ts = rng.integers(0, 1000, size=300)
    offsets = offsets_of(lengths)
    sched = user_schedule(offsets, users, ts)
    steps = list(user_parallel(offsets, sched, 7))
    seen = np.concatenate([b.inputs for b in steps])
    expected = np.concatenate([np.arange(offsets[s], offsets[s + 1] - 1)
                               for s in range(len(lengths)) if lengths[s] >= 2])
    assert np.array_equal(np.sort(seen), expected)
    assert sched.skipped == int((lengths < 2).sum())
    # A lane walks one user's sessions in time order, one after the other.
    first = {int(sched.users[u]): int(sched.sessions[sched.user_offsets[u]])
             for u in range(sched.n_users) if sched.users[u] >= 0}
    previous: list[int] = [-1] * 7
    for b in steps:
        if b.keep is not None:
            previous = [previous[k] for k in b.keep]
        assert np.array_equal(b.session_start, np.isin(b.inputs, offsets[:-1]))
        for lane, (sess, user) in enumerate(zip(b.sessions, b.users, strict=True)):
            if b.user_start[lane]:
                assert user < 0 or sess == first[int(user)]
            elif b.session_start[lane]:
                assert users[sess] == users[previous[lane]] >= 0
                assert ts[sess] >= ts[previous[lane]]
            previous[lane] = int(sess)


def test_min_lanes_and_bad_input():
    assert len(walk(2, min_lanes=2)) == 3  # stops once only one lane is left
    assert len(walk(8)[0].inputs) == 3  # more lanes than users
    with pytest.raises(ValueError, match="batch_size"):
        walk(0)
    with pytest.raises(ValueError, match="one entry per session"):
        user_schedule(offsets_of([2, 2]), np.array([1]))
    bad = user_schedule(offsets_of([2, 2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="two events"):
        list(user_parallel(offsets_of([1, 2, 2]), bad, 2))
    assert walk(3, sched=user_schedule(offsets_of([1]), np.array([4]))) == []
