"""Support filters applied until nothing changes (seed 000, 3.2), leak-free.

Conditions (each configurable): every item has at least ``min_item_support`` events *in the
training split*, every session at least ``min_session_length`` events, every user (in a
user-aware run) at least ``min_user_sessions`` sessions. Item support is counted on training
events only, so nothing about valid/test events decides which items exist; valid/test events
of items that miss the support in train are removed, which also removes items never seen in
training. Split labels are recomputed on every pass (see :mod:`sessionrec.data.split`).

The loop runs on dense integer codes and keeps its counts (events per session, events and
training events per item) up to date as events are removed or change label, so a pass costs
work in proportion to the events it removes or relabels plus one scan for removed items,
not a recount of every event. It returns a mask of the events that survive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sessionrec.data.split import TRAIN, SplitRule
from sessionrec.errors import EmptyDataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventCodes:
    """Events in canonical order as dense integer codes.

    Attributes:
        session: int64 [n_events], session index 0..n_sessions-1, non-decreasing.
        item: int64 [n_events], item code 0..n_items-1.
        session_user: int64 [n_sessions], user code per session, or None (session-only data).
    """

    session: np.ndarray
    item: np.ndarray
    session_user: np.ndarray | None
    n_sessions: int
    n_items: int


@dataclass(frozen=True)
class FilterPass:
    """Events removed by each condition in one pass (for logs and the manifest)."""

    number: int
    events_in: int
    item_support_train: int
    item_support_eval: int
    session_length: int
    user_sessions: int
    events_out: int


def session_alive(codes: EventCodes, alive: np.ndarray) -> np.ndarray:
    """bool [n_sessions]: sessions with at least one alive event."""
    return np.bincount(codes.session[alive], minlength=codes.n_sessions) > 0


def drop_short_sessions(codes: EventCodes, alive: np.ndarray, min_length: int) -> np.ndarray:
    """``alive`` without events of sessions that have fewer than ``min_length`` alive events."""
    length = np.bincount(codes.session[alive], minlength=codes.n_sessions)
    return alive & (length[codes.session] >= min_length)


def drop_light_users(codes: EventCodes, alive: np.ndarray, min_sessions: int) -> np.ndarray:
    """``alive`` without events of users that have fewer than ``min_sessions`` alive sessions."""
    if codes.session_user is None or min_sessions <= 1:
        return alive
    users = codes.session_user[session_alive(codes, alive)]
    per_user = np.bincount(users, minlength=int(codes.session_user.max()) + 1)
    return alive & (per_user[codes.session_user[codes.session]] >= min_sessions)


def session_offsets(codes: EventCodes) -> np.ndarray:
    """int64 [n_sessions + 1]: the events of session ``s`` are ``offsets[s]:offsets[s + 1]``.

    Needs ``codes.session`` non-decreasing (events in canonical order).
    """
    return np.searchsorted(codes.session, np.arange(codes.n_sessions + 1), side="left")


def session_events(offsets: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """int64 positions of every event of ``sessions`` (indices into the event arrays)."""
    starts = offsets[sessions]
    lengths = offsets[sessions + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths
    out = np.repeat(starts - before, lengths)
    out += np.arange(total)
    return out


class _Counts:
    """Alive events and the counts that the conditions read, updated as events go."""

    def __init__(self, codes: EventCodes, alive: np.ndarray) -> None:
        self.codes = codes
        self.alive = alive
        self.offsets = session_offsets(codes)
        self.length = np.bincount(codes.session[alive], minlength=codes.n_sessions)
        self.item_events = np.bincount(codes.item[alive], minlength=codes.n_items)
        self.support = np.zeros(codes.n_items, dtype=np.int64)  # alive train events per item
        self.labels: np.ndarray | None = None

    def alive_events(self, sessions: np.ndarray) -> np.ndarray:
        ev = session_events(self.offsets, sessions)
        return ev[self.alive[ev]]

    def relabel(self, labels: np.ndarray) -> None:
        """Take this pass's labels: item support follows sessions that enter or leave train."""
        codes = self.codes
        now = labels == TRAIN
        if self.labels is None:
            train = self.alive & now[codes.session]
            self.support = np.bincount(codes.item[train], minlength=codes.n_items)
        else:
            was = self.labels == TRAIN
            live = self.length > 0
            for sessions, sign in ((now & ~was & live, 1), (was & ~now & live, -1)):
                ev = self.alive_events(np.flatnonzero(sessions))
                if len(ev):
                    self.support += sign * np.bincount(codes.item[ev],
                                                       minlength=codes.n_items)
        self.labels = labels

    def remove(self, ev: np.ndarray) -> int:
        """Remove the (alive, distinct) events ``ev``; returns how many."""
        if len(ev) == 0:
            return 0
        codes = self.codes
        assert self.labels is not None
        self.alive[ev] = False
        session, item = codes.session[ev], codes.item[ev]
        self.length -= np.bincount(session, minlength=codes.n_sessions)
        self.item_events -= np.bincount(item, minlength=codes.n_items)
        train = self.labels[session] == TRAIN
        self.support -= np.bincount(item[train], minlength=codes.n_items)
        return len(ev)

    def drop_items(self, min_support: int) -> tuple[int, int]:
        """Remove events of items under ``min_support`` train events; (train, eval) removed."""
        weak = (self.item_events > 0) & (self.support < min_support)
        if not weak.any():
            return 0, 0
        train = int(self.support[weak].sum())
        ev = np.flatnonzero(weak[self.codes.item] & self.alive)
        return train, self.remove(ev) - train

    def drop_sessions(self, sessions: np.ndarray) -> int:
        return self.remove(self.alive_events(np.flatnonzero(sessions)))

    def light_user_sessions(self, min_sessions: int) -> np.ndarray:
        """bool [n_sessions]: alive sessions of users with fewer than ``min_sessions``."""
        users = self.codes.session_user
        live = self.length > 0
        if users is None or min_sessions <= 1:
            return np.zeros(len(live), dtype=bool)
        per_user = np.bincount(users[live], minlength=int(users.max()) + 1)
        return live & (per_user[users] < min_sessions)


def filter_until_stable(
    codes: EventCodes,
    rule: SplitRule,
    *,
    min_item_support: int,
    min_session_length: int,
    min_user_sessions: int,
    alive: np.ndarray | None = None,
    max_passes: int = 100,
) -> tuple[np.ndarray, np.ndarray, list[FilterPass]]:
    """Apply the filters until a pass removes nothing.

    Each pass: labels from the alive sessions, then item support in train, then session
    length, then user sessions, each on what the previous condition left. Returns
    ``(alive event mask, session labels, passes)``. ``alive`` starts as all events unless
    given. Raises :class:`EmptyDataError` if nothing is left.
    """
    alive = np.ones(len(codes.item), dtype=bool) if alive is None else alive.copy()
    state = _Counts(codes, alive)
    passes: list[FilterPass] = []
    for number in range(1, max_passes + 1):
        n_in = int(state.length.sum())
        state.relabel(rule(state.length > 0))
        dropped_train, dropped_eval = state.drop_items(min_item_support)
        short = (state.length > 0) & (state.length < min_session_length)
        by_length = state.drop_sessions(short)
        by_user = state.drop_sessions(state.light_user_sessions(min_user_sessions))
        n_out = int(state.length.sum())
        passes.append(FilterPass(number, n_in, dropped_train, dropped_eval, by_length, by_user,
                                 n_out))
        log.info("filter pass %d: %d -> %d events (item support: %d train + %d valid/test, "
                 "session length: %d, user sessions: %d)", number, n_in, n_out, dropped_train,
                 dropped_eval, by_length, by_user)
        if n_out == 0:
            raise EmptyDataError(
                f"filtering removed every event (min_item_support={min_item_support}, "
                f"min_session_length={min_session_length}, "
                f"min_user_sessions={min_user_sessions})",
                hint="lower the filter thresholds (--set filter.min_item_support=...) or use "
                     "more data",
            )
        if n_out == n_in:
            assert state.labels is not None
            return alive, state.labels, passes  # unchanged, so this pass's labels are final
    log.warning("filter did not reach a fixed point in %d passes", max_passes)
    return alive, rule(state.length > 0), passes
