"""Padded prefixes with each item's micro-behaviour: its event type and dwell-time bucket.

RIB (Zhou et al., RecSys 2018) reads, for every click of a prefix, the item, the behaviour
(view, cart, fav, purchase, ... — :attr:`Sessions.event_types`) and how long the user stayed
on it. :class:`MicroSource` is :class:`PrefixSource` with two more ``[B, L]`` tensors
aligned with ``items``:

* ``kinds``: the behaviour code of each item (0: unknown or padding);
* ``dwell``: the dwell-time bucket of each item — the seconds until the session's next event,
  bucketed by :func:`dwell_buckets` (1 + floor(log2(1 + seconds)), capped); 0 for padding,
  for a session's last event and for **the last item of every prefix**, whose next event is
  the one to predict (its time is not known when the prediction is made).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sessionrec.batching.prefixes import PrefixBatch, PrefixSource
from sessionrec.data.sessions import Sessions
from sessionrec.errors import DataError


@dataclass(frozen=True)
class MicroBatch(PrefixBatch):
    """A :class:`PrefixBatch` with ``kinds`` and ``dwell`` int64 [B, L] aligned with items."""

    kinds: torch.Tensor
    dwell: torch.Tensor

    def to(self, device: torch.device) -> MicroBatch:
        return MicroBatch(self.items.to(device), self.lengths.to(device),
                              self.targets.to(device), self.users.to(device), self.pad,
                              self.kinds.to(device), self.dwell.to(device))


def dwell_buckets(seconds: np.ndarray, n_buckets: int) -> np.ndarray:
    """int64 bucket of each dwell time: ``min(n_buckets, 1 + floor(log2(1 + max(s, 0))))``.

    Bucket 0 is reserved for "unknown"; 0 s → 1, 1 s → 2, 2–6 s → 3 … 7–14 s → 4, and so on.
    """
    s = np.maximum(np.asarray(seconds, dtype=np.float64), 0.0)
    return np.minimum(n_buckets, 1 + np.floor(np.log2(1.0 + s))).astype(np.int64)


def event_dwell(sessions: Sessions, n_buckets: int) -> np.ndarray:
    """int64 [n_events]: each event's dwell bucket (0 for a session's last event)."""
    out = np.zeros(sessions.n_events, dtype=np.int64)
    if sessions.n_events < 2:
        return out
    gap = np.diff(sessions.ts)
    same = np.ones(sessions.n_events - 1, dtype=bool)
    same[sessions.offsets[1:-1] - 1] = False  # last event of a session → next session
    out[:-1] = np.where(same, dwell_buckets(gap, n_buckets), 0)
    return out


def event_kinds(sessions: Sessions) -> np.ndarray:
    """int64 [n_events]: the sessions' behaviour codes (all 0 without event types)."""
    if sessions.event_types is None:
        return np.zeros(sessions.n_events, dtype=np.int64)
    return sessions.event_types.astype(np.int64)


def micro_batch(base: PrefixBatch, kinds: torch.Tensor, dwell: torch.Tensor
                    ) -> MicroBatch:
    """``base`` with ``kinds`` / ``dwell`` [B, L]; padding and each row's last item get
    dwell 0, padding gets kind 0."""
    real = base.mask
    last = torch.arange(base.items.shape[1]).unsqueeze(0) == (base.lengths - 1).unsqueeze(1)
    kinds = torch.where(real, kinds, torch.zeros_like(kinds))
    dwell = torch.where(real & ~last, dwell, torch.zeros_like(dwell))
    return MicroBatch(base.items, base.lengths, base.targets, base.users, base.pad,
                          kinds, dwell)


class MicroSource(PrefixSource):
    """:class:`PrefixSource` whose batches carry behaviour and dwell (module docstring)."""

    def __init__(self, sessions: Sessions, batch_size: int, max_len: int, n_dwell: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(sessions, batch_size, max_len, seed, rank, world_size)
        self.kinds = torch.from_numpy(event_kinds(sessions))
        self.dwell = torch.from_numpy(event_dwell(sessions, n_dwell))

    def batch(self, case_idx: torch.Tensor) -> MicroBatch:
        base = super().batch(case_idx)
        target_event = torch.from_numpy(self.cases)[case_idx]
        width = base.items.shape[1]
        first = target_event - base.lengths
        pos = (first.unsqueeze(1) + torch.arange(width).unsqueeze(0)).clamp(
            max=len(self.kinds) - 1)
        return micro_batch(base, self.kinds[pos], self.dwell[pos])


def behaviour_rows(sessions: Sessions, targets: np.ndarray, n_items: int, max_len: int,
                   n_dwell: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per target event: the items, kinds and dwell buckets of its prefix (the session's
    events before it), unknown items (outside ``[0, n_items)``) dropped with their
    behaviours, the last ``max_len`` kept. Used to score sessions with behaviours."""
    if len(targets) and (targets.min() < 0 or targets.max() >= sessions.n_events):
        raise DataError(f"target events must lie in [0, {sessions.n_events})")
    kinds, dwell = event_kinds(sessions), event_dwell(sessions, n_dwell)
    session_of = sessions.session_of_event()
    starts = sessions.offsets[:-1]
    items_out, kinds_out, dwell_out = [], [], []
    for t in targets:
        lo = starts[session_of[t]]
        it = sessions.items[lo:t]
        known = (it >= 0) & (it < n_items)
        items_out.append(it[known][-max_len:])
        kinds_out.append(kinds[lo:t][known][-max_len:])
        dwell_out.append(dwell[lo:t][known][-max_len:])
    return items_out, kinds_out, dwell_out
