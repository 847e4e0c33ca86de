"""Often bought together: item co-occurrence counts within sessions (seed 000's baseline)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.base import register_model
from sessionrec.models.baselines._item_to_item import ItemToItemRecommender
from sessionrec.models.baselines._sparse import (
    check_positive,
    drop_diagonal,
    flatten_prefixes,
    incidence,
)


@register_model
class Cooccurrence(ItemToItemRecommender):
    """"Often bought together": how many training sessions contain both items.

    ``C[i, j] = |{sessions containing both i and j}|`` for ``i != j`` (``C[i, i] = 0``; a
    session counts once however often it repeats an item). With ``B`` the binary session ×
    item incidence matrix, ``C = B^T B`` without its diagonal.

    Scores after a prefix ``x_1..x_n``:

    * ``use_all=False`` (default, the production baseline): ``score(j) = C[x_n, j]``;
    * ``use_all=True``: ``score(j) = sum_p decay^(n - p) * C[x_p, j]`` over every position
      ``p`` of the prefix (a repeated item counts at each of its positions).

    ``pruning`` keeps only the ``pruning`` largest counts of each row (0 = all, default).
    """

    name = "cooc"

    def __init__(self, use_all: bool = False, decay: float = 1.0, pruning: int = 0) -> None:
        super().__init__(use_all=use_all, decay=decay, pruning=pruning)
        check_positive("decay", decay)
        if decay > 1:
            raise ConfigError(f"decay must lie in (0, 1], got {decay!r}")
        check_positive("pruning", pruning, allow_zero=True)
        self.use_all = bool(use_all)
        self.decay = float(decay)
        self.pruning = int(pruning)

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        b = incidence(train, binary=True)
        return drop_diagonal(b.T @ b)

    def _query(self, prefixes: list[np.ndarray]) -> sp.csr_matrix:
        if not self.use_all:
            return super()._query(prefixes)
        items, owner, position, length = flatten_prefixes(prefixes)
        weights = self.decay ** (length[owner] - position).astype(np.float64)
        return sp.csr_matrix((weights, (owner, items)), shape=(len(prefixes), self.n_items_))
