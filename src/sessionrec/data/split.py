"""Train / valid / test labels per session: last session per user, by time, or given.

Labels are int8 codes per session (``TRAIN``, ``VALID``, ``TEST``). A :data:`SplitRule` maps
the mask of sessions still alive to labels; the filter step calls it on every pass, because
which session is a user's last one changes when filtering removes sessions. Time and given
splits do not depend on the mask (a session belongs to the period in which it ended in the
cleaned log).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "valid", "test")

SplitRule = Callable[[np.ndarray], np.ndarray]

US_PER_DAY = 86_400 * 1_000_000


def last_session_labels(session_user: np.ndarray, alive: np.ndarray, *,
                        valid: bool) -> np.ndarray:
    """Each user's last alive session is test, the one before valid (if ``valid``), rest train.

    ``session_user`` holds a dense user code per session; sessions are in canonical order
    (grouped by user, by start time). A user with one session has nothing to condition a test
    session on, so it stays in train; a user with two gets train + test and no valid session.
    """
    labels = np.full(len(session_user), TRAIN, dtype=np.int8)
    idx = np.flatnonzero(alive)
    if len(idx) == 0:
        return labels
    users = session_user[idx]
    last = np.ones(len(idx), dtype=bool)
    last[:-1] = users[:-1] != users[1:]
    second = np.zeros(len(idx), dtype=bool)
    second[:-1] = last[1:] & (users[:-1] == users[1:])
    count = np.bincount(users)[users]
    labels[idx[last & (count >= 2)]] = TEST
    if valid:
        labels[idx[second & (count >= 3)]] = VALID
    return labels


def time_labels(session_end: np.ndarray, test_start: int, valid_start: int | None) -> np.ndarray:
    """Sessions *ending* at or after ``test_start`` (µs) are test, as GRU4Rec's preprocessing.

    Every train event therefore happens before the test period; a test session may have begun
    shortly before it. Sessions ending in ``[valid_start, test_start)`` are valid.
    """
    labels = np.full(len(session_end), TRAIN, dtype=np.int8)
    if valid_start is not None:
        labels[session_end >= valid_start] = VALID
    labels[session_end >= test_start] = TEST
    return labels


def time_cutoffs(max_ts: int, test_days: float, valid_days: float,
                 valid: bool) -> tuple[int, int | None]:
    """(test start, valid start or None) in µs: the last ``test_days`` are test, then valid."""
    test_start = max_ts - int(test_days * US_PER_DAY)
    return test_start, (test_start - int(valid_days * US_PER_DAY) if valid else None)


def given_labels(session_split: np.ndarray, session_end: np.ndarray,
                 valid_days: float | None) -> np.ndarray:
    """The source's own labels; with ``valid_days`` carve valid from the end of train.

    ``session_split`` holds the source's label codes per session.
    """
    labels = session_split.astype(np.int8, copy=True)
    if valid_days is not None:
        train = labels == TRAIN
        if train.any():
            cut = session_end[train].max() - int(valid_days * US_PER_DAY)
            labels[train & (session_end >= cut)] = VALID
    return labels


def fixed(labels: np.ndarray) -> SplitRule:
    """A rule that ignores the alive mask (time and given splits)."""
    return lambda alive: labels
