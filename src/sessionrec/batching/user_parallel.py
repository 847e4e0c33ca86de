"""User-parallel mini-batches (HGRU4Rec, Quadrana et al. 2017).

``B`` lanes each hold one user and walk that user's sessions in time order, one event per step:
lane ``b`` feeds the event at ``pos[b]`` and is trained to predict the event at ``pos[b] + 1``,
exactly as in the session-parallel walk (:mod:`sessionrec.batching.session_parallel`). When a
lane has fed the second-to-last event of a session it moves on to its user's next session
(``session_start``: the model re-initialises the session state from the user state, after
feeding the finished session's final state to the user GRU); when the user has no session
left the lane takes the next user in line (``user_start``: the user state starts from zero).
When no user is left to start, finished lanes are dropped and the batch narrows (``keep``)
until **every** user is done — the original implementation ends an epoch as soon as one lane
runs dry, which never trains on the tail of long histories; this walk does not.

Users are taken in the order of their first session's start; unknown users (``-1``) count as
a new user per session. Sessions with fewer than two events give no target and are skipped
(:attr:`UserSchedule.skipped`). The walk is index arithmetic on offset arrays: one small NumPy
update per step, never a Python loop per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UserSchedule:
    """Which sessions the lanes walk, grouped by user.

    Attributes:
        sessions: int64 [n_walked] session indices, user by user, each user's in time order.
        user_offsets: int64 [n_users + 1] user ``u``'s sessions are
            ``sessions[user_offsets[u]:user_offsets[u + 1]]``.
        users: int64 [n_users] the user id of each group (-1: one session of an unknown user).
        skipped: sessions left out for having fewer than two events.
    """

    sessions: np.ndarray
    user_offsets: np.ndarray
    users: np.ndarray
    skipped: int

    @property
    def n_users(self) -> int:
        return len(self.users)

    def take(self, groups: np.ndarray) -> UserSchedule:
        """The schedule of the user groups ``groups`` (positions, in the order given)."""
        groups = np.asarray(groups, dtype=np.int64)
        sizes = np.diff(self.user_offsets)[groups]
        user_offsets = np.zeros(len(groups) + 1, dtype=np.int64)
        np.cumsum(sizes, out=user_offsets[1:])
        starts = np.repeat(self.user_offsets[groups] - user_offsets[:-1], sizes)
        sessions = self.sessions[starts + np.arange(int(user_offsets[-1]))]
        return UserSchedule(sessions, user_offsets, self.users[groups], self.skipped)


@dataclass(frozen=True)
class UserParallelBatch:
    """One step of the walk (arrays have one entry per live lane, after ``keep``).

    Attributes:
        inputs: int64 global event index each lane feeds.
        targets: int64 the event each lane must predict (``inputs + 1``).
        session_start: bool lanes that start a session at this step (the session state is
            re-initialised from the user state; for lanes not starting a user, the session
            they finished ended with the event that was their target at the previous step).
        user_start: bool lanes that start a new user at this step (a subset of
            ``session_start``): the user state starts afresh.
        keep: int64 lanes of the previous step that are still alive, in order, or None when
            none was dropped (states must be narrowed to ``keep`` first). A dropped lane's
            user, like every lane's user after the last step, has finished.
        sessions: int64 the session index each lane walks.
        users: int64 the user id each lane walks (-1: unknown user).
    """

    inputs: np.ndarray
    targets: np.ndarray
    session_start: np.ndarray
    user_start: np.ndarray
    keep: np.ndarray | None
    sessions: np.ndarray
    users: np.ndarray


def user_schedule(offsets: np.ndarray, session_users: np.ndarray,
                  first_ts: np.ndarray | None = None,
                  known_users_only: bool = False) -> UserSchedule:
    """Group the sessions with >= 2 events by user, each user's sessions in time order.

    Args:
        offsets: int64 [n_sessions + 1] session boundaries into the event arrays.
        session_users: int64 [n_sessions] user of each session (-1: unknown).
        first_ts: [n_sessions] start time of each session (None: index order is time order).
        known_users_only: leave out the sessions of unknown users (-1).

    Users are ordered by their first session's start (ties: by user id); sessions of a user by
    start time (ties: by index).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    session_users = np.asarray(session_users, dtype=np.int64)
    if len(session_users) != len(offsets) - 1:
        raise ValueError(f"session_users needs one entry per session ({len(offsets) - 1}), "
                         f"got {len(session_users)}")
    walk = np.flatnonzero(np.diff(offsets) >= 2)
    skipped = len(offsets) - 1 - len(walk)
    if known_users_only:
        walk = walk[session_users[walk] >= 0]
    users = session_users[walk]
    ts = (np.zeros(len(walk), dtype=np.int64) if first_ts is None
          else np.asarray(first_ts)[walk])
    # Every session of an unknown user is a user of its own (keys above every real id).
    key = users.copy()
    unknown = key < 0
    key[unknown] = key.max(initial=-1) + 1 + np.arange(int(unknown.sum()))
    by_user = np.lexsort((walk, ts, key))  # by user, then start time, then index
    walk, key, ts = walk[by_user], key[by_user], ts[by_user]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(walk) else walk[:0]
    sizes = np.diff(np.append(starts, len(walk)))
    order = np.lexsort((key[starts], ts[starts]))  # users by first session, then id
    sizes = sizes[order]
    user_offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(sizes, out=user_offsets[1:])
    idx = np.repeat(starts[order] - user_offsets[:-1], sizes) + np.arange(len(walk))
    group_users = users[by_user][starts[order]]
    return UserSchedule(walk[idx], user_offsets, group_users, int(skipped))


def user_parallel(offsets: np.ndarray, schedule: UserSchedule, batch_size: int,
                  min_lanes: int = 1) -> Iterator[UserParallelBatch]:
    """Walk the users of ``schedule`` in ``batch_size`` parallel lanes.

    Args:
        offsets: int64 [n_sessions + 1] session boundaries into the event arrays.
        schedule: the users and their sessions (see :func:`user_schedule`).
        batch_size: number of lanes.
        min_lanes: stop once fewer lanes than this are alive (with in-batch negatives only,
            a lone lane has nothing to rank against).

    Yields one :class:`UserParallelBatch` per step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    offsets = np.asarray(offsets, dtype=np.int64)
    walked = schedule.sessions
    if len(walked) and (np.diff(offsets)[walked] < 2).any():
        raise ValueError("user_parallel needs sessions with at least two events")
    user_offsets = schedule.user_offsets
    n_users = schedule.n_users
    n_lanes = min(batch_size, n_users)
    if n_lanes == 0:
        return
    lane_user = np.arange(n_lanes, dtype=np.int64)  # index into the schedule's users
    cur = user_offsets[lane_user].copy()  # index into walked of each lane's session
    end = user_offsets[lane_user + 1].copy()  # one past the lane user's last session
    sess = walked[cur]
    pos = offsets[sess].copy()
    last = offsets[sess + 1] - 1  # a lane is done with a session after feeding last - 1
    session_start = np.ones(n_lanes, dtype=bool)
    user_start = np.ones(n_lanes, dtype=bool)
    keep: np.ndarray | None = None
    next_user = n_lanes
    while len(pos) >= min_lanes:
        yield UserParallelBatch(pos, pos + 1, session_start, user_start, keep, sess,
                                schedule.users[lane_user])
        pos = pos + 1
        keep = None
        session_start = np.zeros(len(pos), dtype=bool)
        user_start = np.zeros(len(pos), dtype=bool)
        done = np.flatnonzero(pos >= last)
        if len(done) == 0:
            continue
        cur, sess, last = cur.copy(), sess.copy(), last.copy()
        cur[done] += 1
        has_more = cur[done] < end[done]
        same_user = done[has_more]  # on to the user's next session
        over = done[~has_more]  # the user's history ended
        n_new = min(len(over), n_users - next_user)
        if n_new:
            lanes = over[:n_new]
            new_users = np.arange(next_user, next_user + n_new, dtype=np.int64)
            next_user += n_new
            lane_user, end = lane_user.copy(), end.copy()
            lane_user[lanes] = new_users
            cur[lanes] = user_offsets[new_users]
            end[lanes] = user_offsets[new_users + 1]
            user_start[lanes] = True
        moved = np.concatenate([same_user, over[:n_new]])
        sess[moved] = walked[cur[moved]]
        pos[moved] = offsets[sess[moved]]
        last[moved] = offsets[sess[moved] + 1] - 1
        session_start[moved] = True
        if n_new < len(over):  # no user left to start: drop the remaining finished lanes
            alive = np.ones(len(pos), dtype=bool)
            alive[over[n_new:]] = False
            keep = np.flatnonzero(alive)
            pos, last, sess, cur, end = pos[keep], last[keep], sess[keep], cur[keep], end[keep]
            lane_user = lane_user[keep]
            session_start, user_start = session_start[keep], user_start[keep]
            if len(pos) == 0:
                return
