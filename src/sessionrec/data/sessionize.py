"""Cutting events into sessions: keep the given session ids or split by an inactivity gap.

Works on sort keys as NumPy arrays: one stable ordering of the events
(:func:`sessionrec.data.order.stable_order`) plus a reorder of the (much smaller) session
table, then a single gather of the rows, column by column so that only one column exists
twice at a time. That is several times faster than sorting the frame twice (see
docs/benchmarks.md, section prepare).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sessionrec.data.order import stable_order


def dense_codes(s: pl.Series) -> np.ndarray:
    """Integer sort keys for an id column: the ids themselves, or dense ranks of strings."""
    if s.dtype.is_integer():
        return s.rechunk().to_numpy().astype(np.int64, copy=False)
    return s.rank("dense").to_numpy().astype(np.int64)


def changes(sorted_keys: np.ndarray) -> np.ndarray:
    """bool [n]: True where a value differs from the previous one (and at position 0)."""
    out = np.ones(len(sorted_keys), dtype=bool)
    if len(sorted_keys) > 1:
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=out[1:])
    return out


def sessionize(events: pl.DataFrame | pl.LazyFrame, *, method: str, gap_minutes: float,
               user_aware: bool) -> pl.DataFrame:
    """Give every event a dense Int64 ``session_id`` and sort into canonical order.

    A LazyFrame is collected (streaming) here; as nothing else then holds the rows, they are
    reordered in place column by column, so the peak memory is about one copy of the events
    plus one column (a DataFrame argument stays alive in the caller: two copies).

    ``method="given"`` keeps the source's sessions; in a user-aware run a session is the pair
    (user, given session id), so an id shared by two users becomes two sessions.
    ``method="gap"`` also cuts a given session wherever two consecutive events are more than
    ``gap_minutes`` apart (sources without session ids pass one "session" per user, which this
    cuts into visits).

    The result is sorted by (user,) session start, session, time — events with equal keys keep
    their input order — and session ids count 0, 1, 2, ... in that order.
    """
    if method not in ("given", "gap"):
        raise ValueError(f"unknown sessionize method {method!r}")
    if isinstance(events, pl.LazyFrame):
        events = events.collect(engine="streaming")
    n = len(events)
    if n == 0:
        return events.with_columns(pl.col("session_id").cast(pl.Int64))
    columns = [c.rechunk() for c in events.get_columns()]  # one-chunk gathers are faster
    del events
    names = [c.name for c in columns]
    ts = columns[names.index("ts")].dt.epoch("us").to_numpy()
    session = dense_codes(columns[names.index("session_id")])
    user = dense_codes(columns[names.index("user_id")]) if user_aware else None
    order = stable_order((ts, session))  # the last key is the primary one
    boundary = changes(session[order])
    if user is not None:
        user_change = changes(user[order])
        if (user_change & ~boundary).any():
            # A session id shared by users: the pairs (user, session id) must be contiguous.
            order = stable_order((ts, session, user))
            boundary = changes(session[order]) | changes(user[order])
        # Otherwise every session id has one user, and grouping by session id alone gives
        # the same sessions, each in the same event order; the sessions are put in (user,
        # start) order below, and within a user their visit numbers keep session id order
        # either way. That saves sorting every event by user (a third of the ordering).
    if method == "gap":
        gap_us = int(gap_minutes * 60 * 1_000_000)
        boundary[1:] |= np.diff(ts[order]) > gap_us
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.append(starts, n))

    # Order the sessions by (user,) start time; the visit number breaks ties stably.
    session_keys = [np.arange(len(starts)), ts[order[starts]]]
    if user is not None:
        session_keys.append(user[order[starts]])
    s_order = stable_order(session_keys)
    new_lengths = lengths[s_order]
    new_starts = np.concatenate(([0], np.cumsum(new_lengths)[:-1]))
    # Free the per-event keys before gathering the rows: at 30M events each is ~240 MB.
    del ts, session, user, boundary
    final = np.repeat(starts[s_order] - new_starts, new_lengths)
    final += np.arange(n)
    final = order[final]
    del order
    session_id = pl.Series("session_id", np.repeat(np.arange(len(starts), dtype=np.int64),
                                                   new_lengths))
    index = pl.Series(final)
    del final
    for i, column in enumerate(columns):  # one column at a time: peak memory + 1 column
        columns[i] = session_id if column.name == "session_id" else column.gather(index)
    return pl.DataFrame(columns)
