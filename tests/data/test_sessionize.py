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


def test_sessions_of_one_user_each_tie_on_start_by_session_id(make_events):
    # every session id has one user: sessions 2 and 3 of user 1 both start at minute 5, so
    # the session id decides; user 2's session 1 starts first but its user sorts last
    df = make_events([(3, 1, 30, 5), (1, 2, 10, 0), (2, 1, 20, 5), (3, 1, 31, 6),
                      (2, 1, 21, 7)])
    out = sessionize(df, method="given", gap_minutes=30, user_aware=True)
    assert out.select("user_id", "session_id", "item_id").rows() == [
        (1, 0, 20), (1, 0, 21), (1, 1, 30), (1, 1, 31), (2, 2, 10)]


def test_shared_and_unshared_session_ids_give_the_canonical_order():
    """Against a direct sort by (user, session start, session id, visit, time, input row)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    n = 2_000
    for shared in (False, True):
        session = rng.integers(0, 300, n)
        user = session % 40 if not shared else rng.integers(0, 40, n)
        ts = rng.integers(0, 5 * 3600, n) * 1_000_000
        df = pl.DataFrame({"session_id": session, "user_id": user, "item_id": np.arange(n),
                           "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC"))})
        out = sessionize(df, method="gap", gap_minutes=30, user_aware=True)
        gap = (pl.col("ts").diff().dt.total_microseconds() > 30 * 60 * 1_000_000)
        ref = (df.with_row_index("row").sort("user_id", "session_id", "ts", "row")
               .with_columns(visit=gap.fill_null(False).cum_sum().over("user_id", "session_id"))
               .with_columns(start=pl.col("ts").min().over("user_id", "session_id", "visit"))
               .sort("user_id", "start", "session_id", "visit", "ts", "row"))
        assert out["item_id"].to_list() == ref["item_id"].to_list()
