from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import build_events

from sessionrec.data.filter import filter_until_stable
from sessionrec.data.split import label_last_session
from sessionrec.errors import EmptyDataError


def last_session(df):
    return label_last_session(df, valid=False)


def run(df, **kw):
    args = dict(label=last_session, min_item_support=2, min_session_length=2,
                min_user_sessions=2, user_aware=True)
    args.update(kw)
    return filter_until_stable(df, **args)


def test_cascade_reaches_fixed_point(make_events):
    # user 1: s0 [1,2], s1 [1,2], s4 [1,2] (test); user 2: s2 [1,3], s3 [3,1] (test)
    # item 3 has 1 train event (s2) -> dropped everywhere; s2 and s3 become length 1 -> dropped;
    # user 2 then has no sessions. User 1 is untouched.
    df = make_events([(0, 1, 1, 0), (0, 1, 2, 1), (1, 1, 1, 60), (1, 1, 2, 61),
                      (2, 2, 1, 0), (2, 2, 3, 1), (3, 2, 3, 60), (3, 2, 1, 61),
                      (4, 1, 1, 120), (4, 1, 2, 121)])
    out, passes = run(df)
    assert out.select("session_id", "item_id").rows() == [(0, 1), (0, 2), (1, 1), (1, 2),
                                                           (4, 1), (4, 2)]
    assert out["split"].to_list() == ["train"] * 4 + ["test"] * 2
    assert passes[0].item_support_train == 1 and passes[0].item_support_eval == 1
    assert passes[0].session_length == 2  # s2 and s3 keep one event each
    assert passes[-1].events_in == passes[-1].events_out  # last pass changed nothing


def test_test_items_unseen_in_train_are_removed_and_counted(make_events):
    # item 9 occurs only in the test session: it must go, even with support 1.
    df = make_events([(0, 1, 1, 0), (0, 1, 2, 1), (1, 1, 1, 60), (1, 1, 9, 61), (1, 1, 2, 62)])
    out, passes = run(df, min_item_support=1)
    assert out.select("session_id", "item_id").rows() == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert 9 not in out["item_id"].to_list()
    assert passes[0].item_support_eval == 1


def test_everything_filtered_is_an_error(make_events):
    df = make_events([(0, 1, 1, 0), (0, 1, 2, 1)])
    with pytest.raises(EmptyDataError, match="filtering removed every event"):
        run(df, min_item_support=5)


rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 12), st.integers(0, 7)), min_size=1, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_conditions_hold_after_filtering(raw):
    # (user, session-within-user, item); minutes make sessions ordered per user
    data = [(u * 100 + s, u, item, s * 60 + i) for i, (u, s, item) in enumerate(raw)]
    df = build_events(data).sort("session_id", "ts")
    try:
        out, _ = run(df, min_item_support=2, min_session_length=2, min_user_sessions=2)
    except EmptyDataError:
        return
    support = out.filter(pl.col("split") == "train").group_by("item_id").len()
    assert support["len"].min() >= 2
    assert set(out["item_id"]) <= set(support["item_id"])
    assert out.group_by("session_id").len()["len"].min() >= 2
    assert out.group_by("user_id").agg(pl.col("session_id").n_unique())["session_id"].min() >= 2
    # labels are consistent: each user's last session is the test one
    assert out.equals(last_session(out))
