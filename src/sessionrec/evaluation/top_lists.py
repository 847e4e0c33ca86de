"""Catalogue coverage and mean popularity of the evaluator's top-K lists, block by block."""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.evaluation.metrics import top_k


class TopLists:
    """Coverage@K and popularity@K accumulated over blocks of top lists (NumPy, one thread).

    ``popularity`` is float64 [n_items] (training count / max count).
    """

    def __init__(self, n_items: int, ks: tuple[int, ...], popularity: np.ndarray) -> None:
        self.ks = ks
        self.k_top = min(ks[-1], n_items)
        self.widths = [min(k, self.k_top) for k in ks]  # k beyond the catalogue is clipped
        self.popularity = np.asarray(popularity, dtype=np.float64)
        # Best (lowest) top-list slot each item ever held; k_top = never in a list.
        self.best_slot = np.full(n_items, self.k_top, dtype=np.int64)
        self.pop_sums = np.zeros(len(ks), dtype=np.float64)
        self.n = 0

    def add(self, scores: torch.Tensor) -> None:
        """Add the top lists of a dense score block [B, n_items]."""
        self.add_top(top_k(scores, self.k_top)[1].cpu().numpy())

    def add_top(self, top: np.ndarray, repeats: int = 1) -> None:
        """Add top lists: int64 [B, k_top] item indices, best first, each ``repeats`` times."""
        for slot in range(top.shape[1] - 1, -1, -1):  # lower slots overwrite higher ones
            column = top[:, slot]
            self.best_slot[column] = np.minimum(self.best_slot[column], slot)
        per_slot = np.cumsum(self.popularity[top].sum(0))  # [k_top]
        self.pop_sums += per_slot[[w - 1 for w in self.widths]] * repeats
        self.n += len(top) * repeats

    def coverage(self) -> dict[int, float]:
        return {k: float((self.best_slot < k).mean()) for k in self.ks}

    def mean_popularity(self) -> dict[int, float]:
        return {k: float(self.pop_sums[i]) / (self.n * w)
                for i, (k, w) in enumerate(zip(self.ks, self.widths, strict=True))}
