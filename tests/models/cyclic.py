"""Sessions whose next item follows from the last one: a fully learnable test task."""

from __future__ import annotations

import numpy as np

from sessionrec.data.sessions import Sessions

N = 12


def cyclic(n_sessions: int, seed: int = 0, vocab: str = "v1") -> Sessions:
    """Sessions that walk i, i+1, i+2, ... (mod N) from a random start, 2 to 6 clicks long."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        start, length = rng.integers(0, N), rng.integers(2, 7)
        sessions.append([(start + j) % N for j in range(length)])
    base = Sessions.from_lists(sessions, N)
    return Sessions(base.items, base.offsets, base.ts, base.users, base.session_ids, N, vocab)
