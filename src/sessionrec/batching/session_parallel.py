"""Session-parallel mini-batches (GRU4Rec, Hidasi et al. 2016).

``B`` lanes each walk one session, one event per step: at every step lane ``b`` feeds the event
at ``pos[b]`` and is trained to predict the event at ``pos[b] + 1``. When a lane has fed the
second-to-last event of its session it takes the next session in line (sessions in order of
their first event) and only that lane's hidden state is reset. There is no padding and no
truncated back-propagation window. When no session is left to start, finished lanes are
dropped and the batch narrows until every session is done.

The walk is pure index arithmetic on the offset array: one small NumPy update per step (a
step covers ``B`` events), never a Python loop per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SessionParallelBatch:
    """One step of the walk.

    Attributes:
        inputs: int64 [n_lanes] global event index fed by each live lane.
        targets: int64 [n_lanes] the event each lane must predict (``inputs + 1``).
        reset: bool [n_lanes] lanes that start a new session at this step (zero their state).
        keep: int64 lane indices of the previous step that are still alive, in order, or
            None when no lane was dropped (the hidden state must be narrowed to ``keep``).
        sessions: int64 [n_lanes] the (original) session index each lane walks.
    """

    inputs: np.ndarray
    targets: np.ndarray
    reset: np.ndarray
    keep: np.ndarray | None
    sessions: np.ndarray


def trainable_sessions(offsets: np.ndarray) -> np.ndarray:
    """Indices of sessions with at least two events (shorter ones give no target)."""
    return np.flatnonzero(np.diff(offsets) >= 2)


def session_order(offsets: np.ndarray, first_ts: np.ndarray | None,
                  sessions: np.ndarray) -> np.ndarray:
    """``sessions`` sorted by the time of their first event (stable), as GRU4Rec trains."""
    if first_ts is None:
        return sessions
    return sessions[np.argsort(first_ts[sessions], kind="stable")]


def session_parallel(offsets: np.ndarray, order: np.ndarray, batch_size: int,
                     min_lanes: int = 1) -> Iterator[SessionParallelBatch]:
    """Walk the sessions ``order`` (each with >= 2 events) in ``batch_size`` parallel lanes.

    Args:
        offsets: int64 [n_sessions + 1] session boundaries into the event arrays.
        order: session indices to walk, in the order lanes pick them up.
        batch_size: number of lanes.
        min_lanes: stop once fewer lanes than this are alive (GRU4Rec stops at 2 when the
            other lanes' targets are the only negatives).

    Yields one :class:`SessionParallelBatch` per step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = np.asarray(order, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(order) and (np.diff(offsets)[order] < 2).any():
        raise ValueError("session_parallel needs sessions with at least two events")
    n_lanes = min(batch_size, len(order))
    if n_lanes == 0:
        return
    sess = order[:n_lanes].copy()
    pos = offsets[sess].copy()
    last = offsets[sess + 1] - 1  # a lane is done after feeding last - 1
    reset = np.ones(n_lanes, dtype=bool)
    keep: np.ndarray | None = None
    next_session = n_lanes
    while len(pos) >= min_lanes:
        yield SessionParallelBatch(pos, pos + 1, reset, keep, sess)
        pos = pos + 1
        done = np.flatnonzero(pos >= last)
        keep = None
        if len(done) == 0:
            reset = np.zeros(len(pos), dtype=bool)
            continue
        n_new = min(len(done), len(order) - next_session)
        reset = np.zeros(len(pos), dtype=bool)
        if n_new:
            lanes = done[:n_new]
            new = order[next_session : next_session + n_new]
            next_session += n_new
            sess = sess.copy()
            sess[lanes] = new
            pos[lanes] = offsets[new]
            last = last.copy()
            last[lanes] = offsets[new + 1] - 1
            reset[lanes] = True
        if n_new < len(done):  # nothing left to start: drop the remaining finished lanes
            alive = np.ones(len(pos), dtype=bool)
            alive[done[n_new:]] = False
            keep = np.flatnonzero(alive)
            pos, last, sess, reset = pos[keep], last[keep], sess[keep], reset[keep]
            if len(pos) == 0:
                return


def session_groups(offsets: np.ndarray, order: np.ndarray, batch_size: int,
                   bucket: int = 32) -> Iterator[np.ndarray]:
    """Groups of ``batch_size`` sessions for whole-session unrolling (``bptt = 0``).

    The sessions of ``order`` are taken in that order in chunks of ``bucket × batch_size``;
    each chunk is sorted by session length (stable: ties keep their order) and cut into groups
    of ``batch_size``, so that the lanes of a group end at about the same step and few steps
    run narrow. Every session of ``order`` is in exactly one group; the last group of a chunk
    may be smaller.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if bucket < 1:
        raise ValueError(f"bucket must be at least 1, got {bucket}")
    order = np.asarray(order, dtype=np.int64)
    lengths = np.diff(np.asarray(offsets, dtype=np.int64))
    chunk = bucket * batch_size
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        for g in range(0, len(part), batch_size):
            yield part[g : g + batch_size]
