from __future__ import annotations

from sessionrec.data.sessionize import sessionize


def test_gap_cuts_after_thirty_minutes(make_events):
    # user 1's stream (session id = user id, as taobao's adapter gives it): 0, 5, 50 minutes
    df = make_events([(1, 1, 10, 0), (1, 1, 11, 5), (1, 1, 12, 50), (2, 2, 13, 1),
                      (2, 2, 14, 31)])
    out = sessionize(df, method="gap", gap_minutes=30, user_aware=True)
    # user 1: [10, 11] then [12]; user 2: 1 -> 31 is exactly 30 minutes: not more, one session
    assert out.select("user_id", "session_id", "item_id").rows() == [
        (1, 0, 10), (1, 0, 11), (1, 1, 12), (2, 2, 13), (2, 2, 14)]


def test_given_sessions_are_split_by_user_and_ordered_by_start(make_events):
    # session 9 is shared by users 1 and 2; session 5 of user 1 starts before session 9
    df = make_events([(9, 1, 10, 20), (9, 2, 11, 21), (5, 1, 12, 0), (9, 1, 13, 22)])
    out = sessionize(df, method="given", gap_minutes=30, user_aware=True)
    assert out.select("user_id", "session_id", "item_id").rows() == [
        (1, 0, 12), (1, 1, 10), (1, 1, 13), (2, 2, 11)]


def test_session_only_orders_by_session_start_and_keeps_ties_in_input_order(make_events):
    df = make_events([(7, None, 1, 10), (7, None, 2, 10), (3, None, 3, 0)])
    out = sessionize(df, method="given", gap_minutes=30, user_aware=False)
    assert out.select("session_id", "item_id").rows() == [(0, 3), (1, 1), (1, 2)]
