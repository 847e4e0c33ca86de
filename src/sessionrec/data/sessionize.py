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


BLOCK = 1 << 22  # rows per block where a per-event array is built piecewise

NUMPY_KINDS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32,
               pl.UInt64, pl.Float32, pl.Float64, pl.Datetime, pl.Date, pl.Duration)


def _numpy_backed(dtype: pl.DataType) -> bool:
    """Whether a column of ``dtype`` round-trips through a NumPy array of its physical type
    without a copy (integers, floats and the temporal types stored as integers)."""
    return any(dtype == kind or dtype.base_type() == kind for kind in NUMPY_KINDS)


def collect_columns(events: pl.LazyFrame, rows_hint: int | None = None,
                    batch_rows: int = 1 << 22) -> list[pl.Series]:
    """The rows of ``events`` as one contiguous Series per column (streaming engine).

    Numeric and temporal columns are copied batch by batch into NumPy buffers (``rows_hint``
    rows to start with, doubled when exceeded; pages never written cost no memory) and come
    back as Series over those buffers; other columns, and any that holds a null, are
    concatenated from the batches. Collecting the frame first and then making each column
    contiguous would hold the rows twice: the batches' memory stays with Polars' allocator
    after the copy, which cannot reuse it for the long arrays that follow. (Polars marks
    ``collect_batches`` unstable; pyproject pins Polars 2.x and the tests cover this path.)
    """
    schema = events.collect_schema()
    capacity = int(rows_hint) if rows_hint else batch_rows
    buffers: dict[str, np.ndarray] = {c: np.empty(capacity, dtype=pl.Series([], dtype=t)
                                                  .to_physical().to_numpy().dtype)
                                      for c, t in schema.items() if _numpy_backed(t)}
    pieces: dict[str, list[pl.Series]] = {c: [] for c in schema if c not in buffers}
    n = 0
    for batch in events.collect_batches(chunk_size=batch_rows, engine="streaming"):
        m = len(batch)
        for name in list(buffers):
            column = batch[name]
            if column.null_count():  # nulls have no NumPy form: this column goes by pieces
                pieces[name] = [pl.Series(name, buffers.pop(name)[:n]).cast(schema[name])]
                continue
            buffer = buffers[name]
            if n + m > len(buffer):
                grown = np.empty(max(2 * len(buffer), n + m), dtype=buffer.dtype)
                grown[:n] = buffer[:n]
                buffer = buffers[name] = grown
            buffer[n:n + m] = column.to_physical().to_numpy()
        for name, parts in pieces.items():
            parts.append(batch[name])
        n += m
    columns = []
    for name, dtype in schema.items():
        if name in buffers:
            columns.append(pl.Series(name, buffers.pop(name)[:n]).cast(dtype))
        else:
            parts = pieces.pop(name)
            columns.append(pl.concat(parts, rechunk=True) if parts else
                           pl.Series(name, [], dtype=dtype))
    return columns


def take(column: pl.Series, positions: np.ndarray) -> pl.Series:
    """``column`` gathered at int64 ``positions`` (NumPy indexing for numeric and temporal
    columns without nulls, whose result Polars wraps without a copy; Polars' gather else)."""
    if _numpy_backed(column.dtype) and not column.null_count():
        values = column.to_physical().to_numpy()[positions]
        return pl.Series(column.name, values).cast(column.dtype)
    index = positions.astype(np.uint32) if len(column) < 2**32 else positions
    return column.rechunk().gather(pl.Series(index))


def sessionize(events: pl.DataFrame | pl.LazyFrame, *, method: str, gap_minutes: float,
               user_aware: bool, drop_repeats: bool = False,
               rows_hint: int | None = None) -> pl.DataFrame:
    """Give every event a dense Int64 ``session_id`` and sort into canonical order.

    A LazyFrame is collected here batch by batch (:func:`collect_columns`; ``rows_hint``, an
    upper bound of its row count such as the raw event count, sizes the buffers); as nothing
    else then holds the rows, they are reordered in place column by column, so the peak memory
    is about one copy of the events plus one column and the sort keys (a DataFrame argument
    stays alive in the caller: two copies).

    ``method="given"`` keeps the source's sessions; in a user-aware run a session is the pair
    (user, given session id), so an id shared by two users becomes two sessions.
    ``method="gap"`` also cuts a given session wherever two consecutive events are more than
    ``gap_minutes`` apart (sources without session ids pass one "session" per user, which this
    cuts into visits).

    The result is sorted by (user,) session start, session, time — events with equal keys keep
    their input order — and session ids count 0, 1, 2, ... in that order.

    ``drop_repeats=True`` also drops an event whose item equals the previous event's in the
    same session, exactly as :func:`sessionrec.data.clean.drop_immediate_repeats` on the
    result would, but inside the one gather of the rows (no second copy of the events). A
    session's first event always stays, so no session is emptied and the ids stay dense.
    """
    if method not in ("given", "gap"):
        raise ValueError(f"unknown sessionize method {method!r}")
    if isinstance(events, pl.LazyFrame):
        columns = collect_columns(events, rows_hint)
    else:
        columns = events.get_columns()
        del events
        for i, column in enumerate(columns):  # one-chunk gathers are faster; one at a time
            columns[i] = column.rechunk()
            del column
    n = len(columns[0]) if columns else 0
    if n == 0:
        return pl.DataFrame(columns).with_columns(pl.col("session_id").cast(pl.Int64))
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
    # Row i of the result is input row order[start of its session's old place + offset]; built
    # in blocks so that no other array of n positions exists beside `order` and `final`.
    final = np.repeat(starts[s_order] - new_starts, new_lengths)
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        final[lo:hi] += np.arange(lo, hi)
        final[lo:hi] = order[final[lo:hi]]
    del order
    keep = None
    if drop_repeats:
        item = take(columns[names.index("item_id")], final)
        repeat = (item == item.shift(1)).fill_null(False).to_numpy(writable=True)
        repeat[new_starts] = False  # the first event of a session: another session's item
        del item
        if repeat.any():
            keep = ~repeat
            final = final[keep]
        del repeat
    for i, column in enumerate(columns):  # one column at a time: peak memory + 1 column
        columns[i] = None  # type: ignore[call-overload]  # the original goes before its copy
        if column.name == "session_id":
            del column
            ids = np.repeat(np.arange(len(starts), dtype=np.int64), new_lengths)
            columns[i] = pl.Series("session_id", ids if keep is None else ids[keep])
            del ids
        else:
            columns[i] = take(column, final)
            del column
    return pl.DataFrame(columns)
