"""Shared negative samples for sampled-softmax / ranking losses (GRU4Rec's extra samples).

Every training step scores each lane against the targets of all lanes (in-batch negatives,
which follow the item popularity) plus ``n_sample`` extra items shared by the whole batch,
drawn with probability proportional to ``popularity ** alpha`` (``alpha = 0``: uniform,
``alpha = 1``: popularity). Drawing one small vector per step is slow, so samples are drawn in
large blocks (``cache_size`` items at a time) with Walker's alias method (two uniform draws and
one table look-up per sample, whatever the catalogue size) and handed out row by row.
"""

from __future__ import annotations

import time

import numpy as np
import torch


def sampling_weights(counts: np.ndarray, alpha: float) -> np.ndarray:
    """float64 [n_items] ``counts ** alpha`` (items never seen get weight 0, also for alpha 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, counts ** float(alpha), 0.0)


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of the distribution ``p``: (acceptance [n], alias [n]).

    Draw a column ``k`` uniformly and ``u ~ U[0, 1)``; the sample is ``k`` if
    ``u < acceptance[k]`` else ``alias[k]``. Column ``k`` keeps ``acceptance[k] / n`` of
    item ``k``'s mass and lends the rest of its slot to ``alias[k]``.
    """
    n = len(p)
    scaled = np.asarray(p, dtype=np.float64) * n
    accept = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = list(np.flatnonzero(scaled < 1.0))
    large = list(np.flatnonzero(scaled >= 1.0))
    while small and large:
        s, g = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    # Leftovers are 1 up to round-off and keep their whole slot; one with no mass at all
    # (possible only through round-off) lends its slot to the most likely item instead.
    for k in small + large:
        if p[k] <= 0:
            accept[k], alias[k] = 0.0, int(np.argmax(p))
    return accept, alias


class NegativeSampler:
    """Blocks of ``n_sample`` shared negatives per step, drawn ∝ ``counts ** alpha``.

    Args:
        counts: training occurrences of every item (length = catalogue size).
        n_sample: items per step; 0 gives empty tensors.
        alpha: exponent of the popularity (0 = uniform over seen items, 1 = popularity).
        cache_size: items drawn per block (GRU4Rec's ``sample_cache_max_size``).
        seed: seed of the sampler's own generator (see :meth:`reseed`).
    """

    def __init__(self, counts: np.ndarray, n_sample: int, alpha: float,
                 cache_size: int = 10_000_000, seed: int = 0) -> None:
        if n_sample < 0:
            raise ValueError(f"n_sample must be >= 0, got {n_sample}")
        weights = sampling_weights(counts, alpha)
        if n_sample and weights.sum() <= 0:
            raise ValueError("cannot sample negatives: no item has a positive count")
        self.n_sample = int(n_sample)
        self.alpha = float(alpha)
        total = weights.sum()
        self._p = torch.from_numpy(weights / total if total > 0 else weights)
        accept, alias = alias_table(self._p.numpy()) if total > 0 else (weights, weights)
        self._accept = torch.from_numpy(accept).float()
        self._alias = torch.from_numpy(alias.astype(np.int64))
        self._rows = max(1, int(cache_size) // max(self.n_sample, 1))
        self._gen = torch.Generator()
        self.seconds = 0.0  # time spent drawing, for profiles
        self.reseed(seed)

    def reseed(self, seed: int, rows: int | None = None) -> None:
        """Restart from ``seed``; blocks hold ``rows`` steps (default and maximum: cache size).

        Trainers reseed at every epoch with a seed derived from (seed, epoch), so an epoch's
        samples do not depend on how earlier epochs ran, and a resumed run draws the same.
        """
        self._gen.manual_seed(int(seed))
        self._block = torch.empty((0, self.n_sample), dtype=torch.int64)
        self._next = 0
        self._block_rows = rows

    def _refill(self) -> None:
        t0 = time.perf_counter()
        rows = max(1, min(self._block_rows or self._rows, self._rows))
        n = rows * self.n_sample
        column = torch.randint(0, len(self._accept), (n,), generator=self._gen)
        u = torch.rand(n, generator=self._gen)
        # index_select: the same look-up as indexing, several times faster on long blocks
        idx = torch.where(u < self._accept.index_select(0, column), column,
                          self._alias.index_select(0, column))
        self._block = idx.view(rows, self.n_sample)
        self._next = 0
        self.seconds += time.perf_counter() - t0

    def draw(self) -> torch.Tensor:
        """int64 [n_sample] item indices for one step."""
        if self.n_sample == 0:
            return self._block[:0].reshape(0)
        if self._next >= len(self._block):
            self._refill()
        row = self._block[self._next]
        self._next += 1
        return row

    def probabilities(self) -> torch.Tensor:
        """float64 [n_items] the sampling distribution (for log-Q corrections and tests)."""
        return self._p.clone()
