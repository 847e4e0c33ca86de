"""Behaviour histories: per user the click, not-click, like and follow sequences + targets.

The batch source of click-probability models (ALPINE and its baselines). One **row** is one
user: the user's visible history split by behaviour (seed 001 §3.1: ``U_c``, ``U_n``, ``U_l``,
``U_f``), each a time-ordered item sequence with timestamps, and the user's **targets**: the
exposures to score, each with its time and click label. A target at time τ may only look at
history events with ``ts < τ`` (models mask with the timestamps), so one pass of a causal
encoder over the user's whole sequence serves every target of that user — no per-exposure
copy of the prefix.

Which exposures are history and which are targets (``split`` codes of
:mod:`sessionrec.data.exposures.prepare`):

* train targets: the train exposures; history: train exposures (before each target);
* valid targets: the valid exposures; history: the train exposures;
* test targets: the test exposures; history: train + valid exposures.

So no label of the split being scored is ever an input. Each behaviour sequence keeps its
last ``max_len`` events (seed 001 §4.2 caps at 300: no user of the KuaiRand slice reaches it).
Rows are right-padded: items with ``pad`` (= n_items), times with :data:`NEVER`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from sessionrec.data.exposures.dataset import Exposures
from sessionrec.data.exposures.prepare import TEST, TRAIN, VALID

NEVER = np.iinfo(np.int64).max  # the time of a padding position: after every target
BEHAVIOURS = ("click", "skip", "like", "follow")  # skip = shown but not clicked


@dataclass(frozen=True)
class UserRows:
    """One user's history and targets as NumPy arrays (items int64, ts int64 µs)."""

    user: int
    click: tuple[np.ndarray, np.ndarray]
    skip: tuple[np.ndarray, np.ndarray]
    like: tuple[np.ndarray, np.ndarray]
    follow: tuple[np.ndarray, np.ndarray]
    target_items: np.ndarray
    target_ts: np.ndarray
    labels: np.ndarray
    target_rows: np.ndarray  # index of each target in the source exposure arrays (-1: none)


@dataclass(frozen=True)
class BehaviourBatch:
    """A padded batch of users.

    ``{b}_items`` int64 [B, L_b] and ``{b}_ts`` int64 [B, L_b] for b in BEHAVIOURS;
    ``users`` int64 [B] (-1 unknown); targets flattened over the batch: ``target_row``
    int64 [T] (the batch row), ``target_item`` int64 [T], ``target_ts`` int64 [T],
    ``targets`` float32 [T] (click labels; 0 when unknown) and ``exposure`` int64 [T]
    (the exposure's index in the dataset, -1 at serving time).
    """

    click_items: torch.Tensor
    click_ts: torch.Tensor
    skip_items: torch.Tensor
    skip_ts: torch.Tensor
    like_items: torch.Tensor
    like_ts: torch.Tensor
    follow_items: torch.Tensor
    follow_ts: torch.Tensor
    users: torch.Tensor
    target_row: torch.Tensor
    target_item: torch.Tensor
    target_ts: torch.Tensor
    targets: torch.Tensor
    exposure: torch.Tensor
    pad: int

    def to(self, device: torch.device) -> BehaviourBatch:
        return BehaviourBatch(**{f.name: (getattr(self, f.name).to(device)
                                          if f.name != "pad" else self.pad)
                                 for f in fields(self)})

    def sequence(self, behaviour: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"{behaviour}_items"), getattr(self, f"{behaviour}_ts")


def _pad(seqs: Sequence[tuple[np.ndarray, np.ndarray]], pad: int,
         max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, min(max_len, max((len(s[0]) for s in seqs), default=0)))
    items = np.full((len(seqs), width), pad, dtype=np.int64)
    ts = np.full((len(seqs), width), NEVER, dtype=np.int64)
    for r, (it, t) in enumerate(seqs):
        it, t = it[-max_len:], t[-max_len:]
        items[r, :len(it)] = it
        ts[r, :len(t)] = t
    return torch.from_numpy(items), torch.from_numpy(ts)


def make_batch(rows: Sequence[UserRows], pad: int, max_len: int) -> BehaviourBatch:
    """Pad ``rows`` into one :class:`BehaviourBatch` (sequences keep their last max_len)."""
    seqs = {b: _pad([getattr(r, b) for r in rows], pad, max_len) for b in BEHAVIOURS}
    n_targets = [len(r.target_items) for r in rows]
    cat = (lambda name, dtype: torch.from_numpy(  # noqa: E731
        np.concatenate([getattr(r, name) for r in rows]).astype(dtype)) if rows
        else torch.zeros(0, dtype=torch.int64))
    return BehaviourBatch(
        *(t for b in BEHAVIOURS for t in seqs[b]),
        users=torch.tensor([r.user for r in rows], dtype=torch.int64),
        target_row=torch.from_numpy(np.repeat(np.arange(len(rows)), n_targets)),
        target_item=cat("target_items", np.int64),
        target_ts=cat("target_ts", np.int64),
        targets=cat("labels", np.float32),
        exposure=cat("target_rows", np.int64),
        pad=pad,
    )


def history_splits(target_split: int) -> tuple[int, ...]:
    """The split codes whose exposures are history for targets of ``target_split``."""
    return (TRAIN, VALID) if target_split == TEST else (TRAIN,)


def user_rows(data: Exposures, u: int, target_split: int) -> UserRows:
    """User ``u``'s history (visible to ``target_split``) and targets."""
    lo, hi = data.offsets[u], data.offsets[u + 1]
    split = data.split[lo:hi]
    item, ts = data.item[lo:hi], data.ts[lo:hi]
    hist = np.isin(split, history_splits(target_split))
    click = data.click[lo:hi] == 1

    def seq(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return item[mask], ts[mask]

    target = split == target_split
    return UserRows(u, seq(hist & click), seq(hist & ~click), seq(hist & (data.like[lo:hi] == 1)),
                    seq(hist & (data.follow[lo:hi] == 1)), item[target], ts[target],
                    data.click[lo:hi][target], np.flatnonzero(target) + lo)


class BehaviourSource:
    """Batches of users with targets in ``split`` (the trainer's batch source).

    Users are ordered by history length into batches of ``batch_users`` (little padding) and
    the batch order is shuffled each epoch with a seed from (seed, epoch); under
    ``torch.distributed`` rank r takes every world_size-th batch (the remainder is dropped).
    """

    def __init__(self, data: Exposures, split: str, batch_users: int, max_len: int,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        code = {"train": TRAIN, "valid": VALID, "test": TEST}[split]
        self.data, self.code, self.max_len = data, code, max_len
        self.seed, self.rank, self.world_size = seed, rank, world_size
        has = np.zeros(data.n_users, dtype=bool)
        np.logical_or.at(has, data.user, data.split == code)
        users = np.flatnonzero(has)
        length = np.diff(data.offsets)[users]
        users = users[np.argsort(length, kind="stable")]
        self.batches = [users[i:i + batch_users] for i in range(0, len(users), batch_users)]
        self.n_cases_all = int((data.split == code).sum())
        self._built: dict[int, BehaviourBatch] = {}  # batches are fixed; only their order moves

    def __len__(self) -> int:
        return len(self.batches) // self.world_size

    @property
    def n_cases(self) -> int:
        return self.n_cases_all // self.world_size

    def batch(self, users: np.ndarray) -> BehaviourBatch:
        return make_batch([user_rows(self.data, int(u), self.code) for u in users],
                          self.data.n_items, self.max_len)

    def epoch(self, epoch: int) -> Iterator[BehaviourBatch]:
        from sessionrec.training.trainer import epoch_seed

        order = np.random.default_rng(epoch_seed(self.seed, epoch, 11)).permutation(
            len(self.batches))
        mine = order[: len(self) * self.world_size][self.rank::self.world_size]
        for b in mine:
            yield self._get(int(b))

    def _get(self, b: int) -> BehaviourBatch:
        if b not in self._built:
            self._built[b] = self.batch(self.batches[b])
        return self._built[b]

    def ordered(self) -> Iterator[BehaviourBatch]:
        """Every batch once, unshuffled (evaluation)."""
        for b in range(len(self.batches)):
            yield self._get(b)
