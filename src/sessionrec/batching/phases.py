"""Tan et al.'s training-data options on top of :class:`PrefixSource` (Tan, Xu & Liu 2016).

* **Sequence augmentation** (§3.1) is what :class:`PrefixSource` does: every prefix of a
  session is a case. Without it (:class:`LastTargetSource`) each session gives one case, all
  its items but the last → the last item (sequence-to-one on whole sessions).
* **Pre-training, then fine-tuning on recent data** (§3.3, "temporal shifts"):
  :func:`recent_sessions` picks the most recent fraction of the training sessions (by their
  first timestamp; ties keep the data's order), and :class:`PhasedSource` trains the first
  epochs on all sessions and the last ``tail_epochs`` on the recent ones. Because the phase is
  a function of the epoch number, checkpoints and ``--resume`` work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from sessionrec.batching.prefixes import PrefixBatch, PrefixSource
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError


def recent_sessions(sessions: Sessions, fraction: float) -> np.ndarray:
    """Indices of the most recent ``ceil(fraction · n_sessions)`` sessions, oldest first.

    Sessions are ordered by the timestamp of their first event; equal timestamps keep the
    order of the data (data with only an order, e.g. diginetica-srgnn, keeps its order).
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"the recent fraction must be in (0, 1], got {fraction}")
    n = sessions.n_sessions
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first_ts = sessions.ts[sessions.offsets[:-1]] if sessions.n_events else np.zeros(n)
    order = np.argsort(first_ts, kind="stable")
    keep = max(1, math.ceil(fraction * n - 1e-9))
    return order[n - keep:].astype(np.int64)


class LastTargetSource(PrefixSource):
    """:class:`PrefixSource` without sequence augmentation: one case per session of length
    >= 2, its items but the last (front-truncated at ``max_len``) → the last item."""

    def __init__(self, sessions: Sessions, batch_size: int, max_len: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(sessions, batch_size, max_len, seed, rank, world_size)
        last_events = sessions.offsets[1:] - 1
        keep = np.isin(self.cases, last_events)
        self.case_start = self.case_start[torch.from_numpy(keep)]
        self.case_users = self.case_users[torch.from_numpy(keep)]
        self.cases = self.cases[keep]
        self.per_rank = len(self.cases) // self.world_size
        if self.per_rank == 0:
            raise ConfigError(
                f"{len(self.cases):,} training sessions of length >= 2 cannot be shared by "
                f"{self.world_size} processes: use fewer processes (--nproc) or more data")


class PhasedSource:
    """Epochs ``0 .. switch_epoch - 1`` from ``first``, later epochs from ``second``."""

    def __init__(self, first: PrefixSource, second: PrefixSource, switch_epoch: int) -> None:
        if switch_epoch < 0:
            raise ConfigError(f"switch_epoch must be >= 0, got {switch_epoch}")
        self.first, self.second, self.switch_epoch = first, second, int(switch_epoch)

    def source(self, epoch: int) -> PrefixSource:
        """The source epoch ``epoch`` draws from."""
        return self.first if epoch < self.switch_epoch else self.second

    def __len__(self) -> int:
        """Batches per epoch of the first phase (the progress bar's total)."""
        return len(self.first)

    @property
    def n_cases(self) -> int:
        """Cases per epoch of the first phase."""
        return self.first.n_cases

    def epoch(self, epoch: int) -> Iterator[PrefixBatch]:
        return self.source(epoch).epoch(epoch)
