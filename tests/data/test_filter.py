from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.data.filter import EventCodes, filter_until_stable
from sessionrec.data.split import TEST, TRAIN, last_session_labels
from sessionrec.errors import EmptyDataError


def make_codes(sessions: list[list[int]], session_user: list[int]) -> EventCodes:
    session = np.repeat(np.arange(len(sessions)), [len(s) for s in sessions])
    item = np.array([i for s in sessions for i in s], dtype=np.int64)
    return EventCodes(session=session, item=item, session_user=np.array(session_user),
                      n_sessions=len(sessions), n_items=int(item.max()) + 1)


def run(codes: EventCodes, **kw):
    args = dict(min_item_support=2, min_session_length=2, min_user_sessions=2)
    args.update(kw)
    rule = lambda alive: last_session_labels(codes.session_user, alive, valid=False)  # noqa: E731
    return filter_until_stable(codes, rule, **args)


def test_cascade_reaches_fixed_point():
    # user 0: s0 [1,2], s1 [1,2], s2 [1,2] (test); user 1: s3 [1,3], s4 [3,1] (test).
    # item 3 has 1 train event (s3) -> dropped in s3 and s4; both become length 1 -> dropped;
    # user 1 then has no sessions left. User 0 is untouched.
    codes = make_codes([[1, 2], [1, 2], [1, 2], [1, 3], [3, 1]], [0, 0, 0, 1, 1])
    alive, labels, passes = run(codes)
    assert alive.tolist() == [True] * 6 + [False] * 4
    assert labels[:3].tolist() == [TRAIN, TRAIN, TEST]
    first = passes[0]
    assert (first.item_support_train, first.item_support_eval) == (1, 1)
    assert first.session_length == 2  # s3 and s4 keep one event each
    assert first.user_sessions == 0
    assert passes[-1].events_in == passes[-1].events_out == 6


def test_test_items_unseen_in_train_are_removed_and_counted():
    # item 9 occurs only in the test session: it must go, even with support 1.
    codes = make_codes([[1, 2], [1, 9, 2]], [0, 0])
    alive, _, passes = run(codes, min_item_support=1)
    assert alive.tolist() == [True, True, True, False, True]
    assert passes[0].item_support_eval == 1


def test_removing_the_last_session_makes_the_previous_one_test():
    # s2 (user 0's last) has only unseen items -> it disappears; s1 becomes the test session.
    codes = make_codes([[1, 2], [1, 2], [7, 8]], [0, 0, 0])
    alive, labels, _ = run(codes, min_item_support=1, min_user_sessions=1)
    assert alive.tolist() == [True] * 4 + [False] * 2
    assert labels[:2].tolist() == [TRAIN, TEST]


def test_everything_filtered_is_an_error():
    with pytest.raises(EmptyDataError, match="filtering removed every event"):
        run(make_codes([[1, 2]], [0]), min_item_support=5)


sessions_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.lists(st.integers(0, 7), min_size=1, max_size=6)),
    min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(sessions_strategy)
def test_conditions_hold_after_filtering(raw):
    raw = sorted(raw, key=lambda r: r[0])  # canonical order: grouped by user
    codes = make_codes([items for _, items in raw], [u for u, _ in raw])
    try:
        alive, labels, _ = run(codes, min_item_support=2, min_session_length=2,
                               min_user_sessions=2)
    except EmptyDataError:
        return
    session, item = codes.session[alive], codes.item[alive]
    train = labels[session] == TRAIN
    support = np.bincount(item[train], minlength=codes.n_items)
    assert (support[item] >= 2).all()  # every kept item has support in train
    assert np.bincount(session)[np.unique(session)].min() >= 2
    users = codes.session_user[np.unique(session)]
    assert np.bincount(users)[np.unique(users)].min() >= 2
    # labels are consistent with the survivors: each user's last session is its test one
    alive_sessions = np.zeros(codes.n_sessions, dtype=bool)
    alive_sessions[session] = True
    expected = last_session_labels(codes.session_user, alive_sessions, valid=False)
    assert (labels[alive_sessions] == expected[alive_sessions]).all()


def recount_filter(codes: EventCodes, rule, *, min_item_support: int, min_session_length: int,
                   min_user_sessions: int, alive: np.ndarray):
    """The filter written the obvious way: every count recomputed from scratch each pass."""
    passes = []
    while True:
        n_in = int(alive.sum())
        live = np.bincount(codes.session[alive], minlength=codes.n_sessions) > 0
        labels = rule(live)
        train = alive & (labels[codes.session] == TRAIN)
        support = np.bincount(codes.item[train], minlength=codes.n_items)
        keep = alive & (support[codes.item] >= min_item_support)
        dropped_train = int((alive & ~keep & train).sum())
        dropped_eval = int((alive & ~keep).sum()) - dropped_train
        length = np.bincount(codes.session[keep], minlength=codes.n_sessions)
        short = keep & (length[codes.session] < min_session_length)
        alive = keep & ~short
        live = np.bincount(codes.session[alive], minlength=codes.n_sessions) > 0
        per_user = np.bincount(codes.session_user[live], minlength=codes.session_user.max() + 1)
        light = alive & (per_user[codes.session_user[codes.session]] < min_user_sessions)
        alive = alive & ~light
        passes.append((n_in, dropped_train, dropped_eval, int(short.sum()), int(light.sum()),
                       int(alive.sum())))
        if int(alive.sum()) in (0, n_in):
            return alive, labels, passes


@settings(max_examples=60, deadline=None)
@given(sessions_strategy, st.integers(1, 3), st.integers(2, 3), st.integers(1, 3),
       st.booleans(), st.lists(st.booleans(), min_size=200, max_size=200))
def test_incremental_counts_equal_a_full_recount(raw, support, length, user_sessions, valid,
                                                 start):
    # the filter keeps its counts up to date; it must agree with recounting every pass,
    # including labels that move when a user's last session disappears, and a given start mask
    raw = sorted(raw, key=lambda r: r[0])
    codes = make_codes([items for _, items in raw], [u for u, _ in raw])
    alive = np.array(start[:len(codes.item)])
    rule = lambda live: last_session_labels(codes.session_user, live, valid=valid)  # noqa: E731
    args = dict(min_item_support=support, min_session_length=length,
                min_user_sessions=user_sessions)
    want_alive, want_labels, want_passes = recount_filter(codes, rule, alive=alive, **args)
    if not want_alive.any():
        with pytest.raises(EmptyDataError):
            filter_until_stable(codes, rule, alive=alive, **args)
        return
    got_alive, got_labels, got_passes = filter_until_stable(codes, rule, alive=alive, **args)
    assert got_alive.tolist() == want_alive.tolist()
    assert got_labels.tolist() == want_labels.tolist()
    assert [(p.events_in, p.item_support_train, p.item_support_eval, p.session_length,
             p.user_sessions, p.events_out) for p in got_passes] == want_passes
