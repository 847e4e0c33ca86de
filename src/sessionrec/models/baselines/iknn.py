"""Item-kNN: items similar to the session's last item (cosine over session incidence)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.base import register_model
from sessionrec.models.baselines._item_to_item import ItemToItemRecommender
from sessionrec.models.baselines._sparse import check_positive, drop_diagonal, incidence


@register_model
class ItemKNN(ItemToItemRecommender):
    """Item-kNN baseline.

    Each item is the binary vector of the training sessions it occurs in. With ``n_i`` the
    number of sessions containing ``i`` and ``c_ij`` the number containing both ``i`` and ``j``,

    ``sim(i, j) = c_ij / (n_i^alpha * n_j^(1 - alpha) + shrinkage)`` for ``i != j``, 0 on the
    diagonal. ``alpha=0.5, shrinkage=0`` is the plain cosine; the shrinkage (default 20)
    damps similarities resting on few sessions. Score after a prefix: ``sim(x_n, j)``.
    ``pruning`` (default 100, 0 = all) keeps the most similar items of each item.
    """

    name = "iknn"

    def __init__(self, shrinkage: float = 20.0, alpha: float = 0.5, pruning: int = 100) -> None:
        super().__init__(shrinkage=shrinkage, alpha=alpha, pruning=pruning)
        check_positive("shrinkage", shrinkage, allow_zero=True)
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {alpha!r}")
        check_positive("pruning", pruning, allow_zero=True)
        self.shrinkage = float(shrinkage)
        self.alpha = float(alpha)
        self.pruning = int(pruning)

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        b = incidence(train, binary=True)
        n = np.asarray(b.sum(axis=0)).ravel()
        c = drop_diagonal(b.T @ b).tocoo()
        denom = n[c.row] ** self.alpha * n[c.col] ** (1.0 - self.alpha) + self.shrinkage
        return sp.csr_matrix((c.data / denom, (c.row, c.col)), shape=c.shape)
