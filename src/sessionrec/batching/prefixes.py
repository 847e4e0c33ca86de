"""Padded prefixes: every prefix of every session, with the next item as its target.

NARM, STAMP, SR-GNN and the attention models train on *cases*: a session ``[a, b, c, d]``
gives the cases ``[a] → b``, ``[a, b] → c`` and ``[a, b, c] → d``. A case is identified by
the global index of its target event, so the whole epoch is an integer array and a batch is
built by index arithmetic (no Python loop per case):

* prefixes longer than ``max_len`` keep their **last** ``max_len`` items (truncated from the
  front: the most recent clicks matter most);
* a batch is ``items [B, L]`` right-padded with the padding index ``n_items`` (``L`` = the
  longest prefix in the batch), ``lengths [B]``, ``targets [B]`` and ``users [B]``;
* each epoch shuffles the cases with a seed derived from (seed, epoch), so a resumed run sees
  the same batches;
* under ``torch.distributed`` each rank takes a disjoint, equally long share of the shuffled
  cases (the remainder that cannot be shared equally is left out of that epoch), so every
  rank runs the same number of steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError


@dataclass(frozen=True)
class PrefixBatch:
    """A batch of padded session prefixes.

    Attributes:
        items: int64 [B, L] item indices, right-padded with ``pad`` (= ``n_items``).
        lengths: int64 [B] number of real items per row (>= 1).
        targets: int64 [B] the item to predict (-1 when unknown, e.g. at serving time).
        users: int64 [B] user index per row (-1: unknown).
        pad: the padding index.
    """

    items: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    users: torch.Tensor
    pad: int

    @property
    def mask(self) -> torch.Tensor:
        """bool [B, L]: True at real items."""
        return self.items != self.pad

    def last_items(self) -> torch.Tensor:
        """int64 [B]: each row's most recent item."""
        return self.items.gather(1, (self.lengths - 1).unsqueeze(1)).squeeze(1)

    def to(self, device: torch.device) -> PrefixBatch:
        return PrefixBatch(self.items.to(device), self.lengths.to(device),
                           self.targets.to(device), self.users.to(device), self.pad)


def _check_items(items: np.ndarray, n_items: int, where: str) -> None:
    if len(items) and (int(items.min()) < 0 or int(items.max()) >= n_items):
        bad = int(np.flatnonzero((items < 0) | (items >= n_items))[0])
        raise DataError(f"{where}: item index {int(items[bad])} at event {bad} is outside "
                        f"the model's catalogue [0, {n_items}); encode the data with the "
                        "model's vocabulary (unknown items are dropped from prefixes)")


def batch_from_lists(prefixes: Sequence[Sequence[int]], n_items: int, max_len: int,
                     users: Sequence[int] | None = None) -> PrefixBatch:
    """A batch from non-empty prefixes of known items (scoring and serving)."""
    rows = [np.asarray(p, dtype=np.int64)[-max_len:] for p in prefixes]
    if any(len(r) == 0 for r in rows):
        raise DataError("a prefix batch needs non-empty prefixes")
    for r in rows:
        _check_items(r, n_items, "prefix")
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max())), n_items, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    u = np.full(len(rows), -1, dtype=np.int64) if users is None else np.asarray(users, np.int64)
    return PrefixBatch(torch.from_numpy(out), torch.from_numpy(lengths),
                       torch.full((len(rows),), -1, dtype=torch.int64), torch.from_numpy(u),
                       n_items)


class PrefixSource:
    """Every prefix of ``sessions`` → next item, in shuffled, optionally sharded batches.

    Args:
        sessions: training sessions (item indices must lie in ``[0, sessions.n_items)``).
        batch_size: cases per batch on this rank.
        max_len: longest prefix kept (front-truncated beyond it).
        seed: the run's seed; epoch ``e`` shuffles with a seed derived from (seed, e).
        rank / world_size: this process's share under torch.distributed.
    """

    def __init__(self, sessions: Sessions, batch_size: int, max_len: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if max_len < 1:
            raise ConfigError(f"max_len must be at least 1, got {max_len}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} outside world size {world_size}")
        _check_items(sessions.items, sessions.n_items, "training sessions")
        self.items = torch.from_numpy(sessions.items)
        self.n_items = int(sessions.n_items)
        self.batch_size, self.max_len = int(batch_size), int(max_len)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        starts = np.repeat(sessions.offsets[:-1], sessions.lengths)
        position = np.arange(sessions.n_events, dtype=np.int64) - starts
        self.cases = np.flatnonzero(position >= 1)  # target events: every non-first event
        self.case_start = torch.from_numpy(starts[self.cases])
        self.case_users = torch.from_numpy(
            np.repeat(sessions.users, sessions.lengths)[self.cases])
        self.per_rank = len(self.cases) // self.world_size
        if self.per_rank == 0:
            raise ConfigError(
                f"{len(self.cases):,} training cases cannot be shared by {self.world_size} "
                "processes: use fewer processes (--nproc) or more data")

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return -(-self.per_rank // self.batch_size)

    @property
    def n_cases(self) -> int:
        """Cases per epoch on this rank."""
        return self.per_rank

    def epoch(self, epoch: int) -> Iterator[PrefixBatch]:
        """This rank's batches of epoch ``epoch`` (shuffled; deterministic given the seed)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 7_919 + 17)
        order = torch.randperm(len(self.cases), generator=gen)
        mine = order[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
        for lo in range(0, len(mine), self.batch_size):
            yield self.batch(mine[lo : lo + self.batch_size])

    def batch(self, case_idx: torch.Tensor) -> PrefixBatch:
        """The batch of cases ``case_idx`` (positions into :attr:`cases`)."""
        target_event = torch.from_numpy(self.cases)[case_idx]
        start = self.case_start[case_idx]
        lengths = torch.clamp(target_event - start, max=self.max_len)
        width = int(lengths.max())
        first = target_event - lengths
        pos = first.unsqueeze(1) + torch.arange(width).unsqueeze(0)
        real = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
        items = torch.where(real, self.items[pos.clamp(max=len(self.items) - 1)],
                            torch.full_like(pos, self.n_items))
        return PrefixBatch(items, lengths, self.items[target_event],
                           self.case_users[case_idx], self.n_items)
