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


def test_drop_repeats_in_the_gather_equals_dropping_them_afterwards():
    """``drop_repeats=True`` is `clean.drop_immediate_repeats` applied to the sessionized rows
    (int and string item ids, given and gap sessions, repeats across a session boundary)."""
    import numpy as np
    import polars as pl

    from sessionrec.data.clean import drop_immediate_repeats

    rng = np.random.default_rng(1)
    n = 3_000
    for method in ("given", "gap"):
        for items in (rng.integers(0, 4, n), np.array([f"p{i}" for i in rng.integers(0, 4, n)])):
            session = rng.integers(0, 200, n)
            df = pl.DataFrame({"session_id": session, "user_id": session % 30,
                               "item_id": items, "price": rng.random(n),
                               "ts": pl.Series(rng.integers(0, 4 * 3600, n) * 1_000_000)
                               .cast(pl.Datetime("us", "UTC"))})
            fused = sessionize(df, method=method, gap_minutes=30, user_aware=True,
                               drop_repeats=True)
            ref = drop_immediate_repeats(
                sessionize(df, method=method, gap_minutes=30, user_aware=True).lazy()).collect()
            assert 0 < len(fused) < n  # four items: many repeats were dropped
            assert fused.equals(ref)
            assert fused["session_id"].n_unique() == fused["session_id"].max() + 1  # dense


def test_drop_repeats_keeps_a_session_first_event_equal_to_the_previous_session_last(
        make_events):
    # user 1: session 1 = [10, 10, 11], session 2 = [11, 11]; the second session's first 11
    # follows the first session's last 11 in the output but is not a repeat
    df = make_events([(1, 1, 10, 0), (1, 1, 10, 1), (1, 1, 11, 2), (2, 1, 11, 60),
                      (2, 1, 11, 61)])
    out = sessionize(df, method="given", gap_minutes=30, user_aware=True, drop_repeats=True)
    assert out.select("session_id", "item_id").rows() == [(0, 10), (0, 11), (1, 11)]


def test_collect_columns_equals_collect_for_every_column_kind():
    """Numeric and temporal columns go through NumPy buffers (grown past a too-small hint,
    switched to pieces when a later batch brings a null); strings by pieces: the frame is
    the same as Polars' own collect, dtypes included."""
    import numpy as np
    import polars as pl

    from sessionrec.data.sessionize import collect_columns

    n = 10_000
    rng = np.random.default_rng(2)
    price = rng.random(n)
    frame = pl.DataFrame({
        "item_id": rng.integers(0, 50, n),
        "small": rng.integers(0, 9, n).astype(np.int16),
        "price": pl.Series(price).scatter([7_500], [None]),  # a null in a late batch
        "name": [f"x{i}" for i in rng.integers(0, 5, n)],
        "ts": pl.Series(rng.integers(0, 10**12, n)).cast(pl.Datetime("ms", "UTC")),
        "day": pl.Series(rng.integers(0, 10**4, n)).cast(pl.Int32).cast(pl.Date),
    })
    lazy = frame.lazy().filter(pl.col("item_id") != 3)
    expected = lazy.collect()
    for hint in (None, 100, n):
        got = pl.DataFrame(collect_columns(lazy, hint, batch_rows=1_000))
        assert got.equals(expected)
        assert all(c.n_chunks() == 1 for c in got.get_columns())
    empty = pl.DataFrame(collect_columns(lazy.filter(pl.col("item_id") < 0), 10))
    assert empty.schema == expected.schema and empty.height == 0
