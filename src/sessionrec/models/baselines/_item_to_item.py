"""Shared machinery of the item-to-item baselines (cooc, ar, sr, markov, iknn).

Each of them learns one sparse matrix ``W`` [n_items, n_items] whose row ``i`` scores every
candidate item after ``i``. A batch of prefixes becomes a sparse query ``Q`` [B, n_items]
(by default a one-hot of each prefix's last item) and the scores are ``Q @ W``, made dense at
the end. Items without a rule get exactly 0.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender
from sessionrec.models.baselines._sparse import (
    check_state_keys,
    csr_from_state,
    csr_state,
    keep_top_per_row,
)
from sessionrec.models.scores import SparseScores

_STATE = {"matrix_indptr", "matrix_indices", "matrix_data"}


class ItemToItemRecommender(SessionRecommender):
    """Base class: scores = ``Q @ W`` with a learned item × item matrix ``W`` (``matrix_``).

    Subclasses implement :meth:`_build_matrix` and set ``self.pruning`` (keep only the
    ``pruning`` largest entries of each row; 0 keeps all).
    """

    pruning: int = 0

    @abstractmethod
    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        """The item × item matrix [n_items, n_items] learned from ``train``."""

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        m = self._build_matrix(train).tocsr()
        m.sum_duplicates()
        m.eliminate_zeros()
        if self.pruning > 0:
            m = keep_top_per_row(m, self.pruning)
        m.sort_indices()
        self.matrix_ = m.astype(np.float32)

    def _query(self, prefixes: list[np.ndarray]) -> sp.csr_matrix:
        """Sparse [B, n_items] weights of the prefix items; default: the last item, weight 1."""
        last = np.fromiter((p[-1] for p in prefixes), dtype=np.int64, count=len(prefixes))
        return sp.csr_matrix(
            (np.ones(len(prefixes), dtype=np.float32), (np.arange(len(prefixes)), last)),
            shape=(len(prefixes), self.n_items_),
        )

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        # float32 throughout: W is stored in float32 and one-hot queries multiply exactly.
        return self._score_sparse(prefixes, users).dense()

    def _score_sparse(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> SparseScores:
        # float32 throughout: W is stored in float32 and one-hot queries multiply exactly.
        scores = self._query(prefixes).astype(np.float32) @ self.matrix_
        return SparseScores.from_csr(sp.csr_matrix(scores), 0.0)

    def _state(self) -> dict[str, torch.Tensor]:
        return csr_state("matrix", self.matrix_)

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        check_state_keys(self, state, _STATE)
        self.matrix_ = csr_from_state(state, "matrix", (self.n_items_, self.n_items_))
