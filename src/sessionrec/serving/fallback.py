"""Recommendations without the model's state: "often bought together", then popularity.

Used when the clicked product is unknown to the model (the session state stays as it is) or
the state store cannot be reached. With an item-to-item model (the co-occurrence baseline
``cooc``, or any model keeping an item x item ``matrix_``) the row of the session's last
known item ranks first; popular items fill the rest of the list.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Fallback:
    """Top-k from an item x item matrix row, filled up by popularity."""

    def __init__(self, popularity: np.ndarray, matrix: sp.csr_matrix | None = None,
                 blocked: np.ndarray | None = None, name: str = "pop") -> None:
        popularity = np.asarray(popularity, dtype=np.float32)
        self.n_items = len(popularity)
        self.blocked = np.zeros(self.n_items, dtype=bool)
        if blocked is not None and len(blocked):
            self.blocked[np.asarray(blocked, dtype=np.int64)] = True
        order = np.argsort(-popularity, kind="stable")
        self.popular = order[~self.blocked[order]]
        self.matrix = matrix
        self.name = name if matrix is not None else "pop"

    def topk(self, item: int, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """Up to ``k`` item indices for a session whose last known item is ``item`` (-1: none).

        Never returns ``item`` itself, a blocked item or one of ``exclude``.
        """
        banned = set() if exclude is None else {int(i) for i in exclude}
        if item >= 0:
            banned.add(int(item))
        out: list[int] = []
        if self.matrix is not None and 0 <= item < self.n_items:
            row = self.matrix[item]
            cols, vals = row.indices, row.data
            order = np.lexsort((cols, -vals))  # highest count first, ties by index
            for j in cols[order]:
                if not self.blocked[j] and int(j) not in banned:
                    out.append(int(j))
                    if len(out) == k:
                        return np.asarray(out, dtype=np.int64)
        taken = set(out) | banned
        for j in self.popular:
            if int(j) not in taken:
                out.append(int(j))
                if len(out) == k:
                    break
        return np.asarray(out, dtype=np.int64)
