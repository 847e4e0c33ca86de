"""Support filters applied until nothing changes (seed 000, 3.2), leak-free.

Conditions (each configurable): every item has at least ``min_item_support`` events *in the
training split*, every session at least ``min_session_length`` events, every user (in a
user-aware run) at least ``min_user_sessions`` sessions. Item support is counted on training
events only, so nothing about valid/test events decides which items exist; valid/test events
of items that miss the support in train are removed, which also removes items never seen in
training. Split labels are recomputed on every pass (see :mod:`sessionrec.data.split`).

The loop runs on dense integer codes with ``np.bincount`` and gathers — a pass over 30M
events takes well under a second — and returns a mask of the events that survive.
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

    Returns ``(alive event mask, session labels, passes)``. ``alive`` starts as all events
    unless given. Raises :class:`EmptyDataError` if nothing is left.
    """
    alive = np.ones(len(codes.item), dtype=bool) if alive is None else alive.copy()
    passes: list[FilterPass] = []
    for number in range(1, max_passes + 1):
        n_in = int(alive.sum())
        labels = rule(session_alive(codes, alive))
        train = alive & (labels[codes.session] == TRAIN)
        support = np.bincount(codes.item[train], minlength=codes.n_items)
        keep = alive & (support[codes.item] >= min_item_support)
        dropped = alive & ~keep
        dropped_train = int((dropped & train).sum())
        dropped_eval = int(dropped.sum()) - dropped_train
        n = int(keep.sum())
        alive = drop_short_sessions(codes, keep, min_session_length)
        by_length = n - int(alive.sum())
        n = int(alive.sum())
        alive = drop_light_users(codes, alive, min_user_sessions)
        by_user = n - int(alive.sum())
        n_out = int(alive.sum())
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
            return alive, labels, passes  # unchanged, so this pass's labels are final
    log.warning("filter did not reach a fixed point in %d passes", max_passes)
    return alive, rule(session_alive(codes, alive)), passes
