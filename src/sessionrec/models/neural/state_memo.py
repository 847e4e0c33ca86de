"""Recurrent states of served histories, kept between requests and resumed from a prefix.

A causal encoder's state at position t depends only on the items at positions 0..t, so the
states of a history are a function of its item sequence alone — not of the request, the
candidates or the time. A served user's history mostly grows at its end between two requests
(a few behaviours arrive), so the states computed for the previous request are those of a
prefix of the new sequence: only the new positions have to run through the encoder.

:class:`StateMemo` maps an item sequence to its per-position states (LRU over sequences). A
lookup finds the longest memoised prefix among the sequence and its ``back`` shorter
prefixes; the caller runs the encoder from there and stores the result. Exact by
construction: an entry is used only for a sequence that starts with exactly its items (a
history capped at ``max_len`` that dropped its oldest event no longer does, and is encoded
afresh). Entries are keyed by the weights they were computed with too: an optimiser step or
``load_state_dict`` (parameter version counters) empties the memo.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import torch

# (h, c) [1, n, d] of positions 0..n-1: two tensors per entry, not two per position (fewer
# objects for the garbage collector to walk, no stacking on a hit)
States = tuple[torch.Tensor, torch.Tensor]


def weights_key(params: Iterable[torch.Tensor]) -> tuple[int, ...]:
    """Identity, storage and version counter of every tensor: changes with any update."""
    return tuple(v for p in params for v in (id(p), p.data_ptr(), p._version))


class StateMemo:
    """LRU memo of per-position states by item sequence (int64 [L]), holding at most
    ``positions`` positions in all (memory: 2 x positions x d floats; the default is 64 MiB
    at d = 32, e.g. 870 histories at a 300 cap or 13,000 of 20 events)."""

    def __init__(self, positions: int = 262_144, back: int = 16) -> None:
        self.positions, self.back = positions, back
        self._weights: tuple[int, ...] = ()
        self._states: OrderedDict[bytes, States] = OrderedDict()
        self._held = 0

    def __len__(self) -> int:
        return len(self._states)

    def lookup(self, items: np.ndarray, weights: tuple[int, ...]) -> States | None:
        """The states of the longest memoised prefix of ``items`` (at most ``back`` events
        shorter), or None."""
        if weights != self._weights:
            self._weights = weights
            self._states.clear()
            self._held = 0
        raw = items.astype(np.int64, copy=False).tobytes()
        for n in range(len(items), max(0, len(items) - self.back) - 1, -1):
            key = raw[:n * 8]
            hit = self._states.get(key)
            if hit is not None:
                self._states.move_to_end(key)
                return hit
        return None

    def store(self, items: np.ndarray, states: States) -> None:
        """Remember the states of ``items`` (least recently used entries leave to make room)."""
        key = items.astype(np.int64, copy=False).tobytes()
        old = self._states.pop(key, None)
        self._held += states[0].shape[1] - (0 if old is None else old[0].shape[1])
        self._states[key] = states
        while self._held > self.positions and len(self._states) > 1:
            self._held -= self._states.popitem(last=False)[1][0].shape[1]
