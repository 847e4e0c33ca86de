"""Quick-bounce filter (seed 004): drop clicks the visitor left again almost at once.

The dwell time of a click is the time until the next click of the same session; a click whose
dwell is below ``min_dwell`` seconds is a quick bounce (a mis-click, or a product rejected at
first sight) and teaches the embedding a false "viewed together". The last click of a session
has no measured dwell and is kept. Sessions left with no click are dropped; the others keep
their order. Timestamps are whole seconds (``Sessions.ts``), so ``min_dwell`` below 1 only
drops clicks within the same second. Data without timestamps (all equal) would lose every
click but the last: the filter refuses it.
"""

from __future__ import annotations

import logging

import numpy as np

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def dwell_times(sessions: Sessions) -> np.ndarray:
    """float64 [n_events]: seconds to the next click of the session; inf for a last click."""
    dwell = np.full(sessions.n_events, np.inf)
    if sessions.n_events > 1:
        same = np.diff(sessions.session_of_event()) == 0
        gaps = np.diff(sessions.ts).astype(np.float64)
        dwell[:-1][same] = gaps[same]
    return dwell


def drop_quick_bounces(sessions: Sessions, min_dwell: float) -> tuple[Sessions, int]:
    """``sessions`` without the clicks whose dwell is below ``min_dwell`` seconds, and how
    many clicks were dropped."""
    if not min_dwell >= 0:
        raise ConfigError(f"min_dwell must be >= 0 seconds, got {min_dwell}")
    if min_dwell == 0 or sessions.n_events == 0:
        return sessions, 0
    if np.all(sessions.ts == sessions.ts[0]) and sessions.n_events > sessions.n_sessions:
        raise DataError("the sessions have no timestamps (all equal): dwell times cannot be "
                        "measured", column="ts", hint="set min_dwell to 0 for this data")
    keep = dwell_times(sessions) >= min_dwell
    out = keep_events(sessions, keep)
    dropped = int((~keep).sum())
    log.info("quick-bounce filter (dwell < %s s): dropped %s of %s clicks", min_dwell,
             f"{dropped:,}", f"{sessions.n_events:,}")
    return out, dropped


def keep_events(sessions: Sessions, keep: np.ndarray) -> Sessions:
    """The events where ``keep`` (bool [n_events]) is true, in order; empty sessions go."""
    lengths = np.bincount(sessions.session_of_event()[keep], minlength=sessions.n_sessions)
    alive = lengths > 0
    offsets = np.zeros(int(alive.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[alive], out=offsets[1:])
    return Sessions(sessions.items[keep], offsets, sessions.ts[keep], sessions.users[alive],
                    sessions.session_ids[alive], sessions.n_items, sessions.vocab)
