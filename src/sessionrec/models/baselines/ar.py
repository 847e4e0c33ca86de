"""AR: association rules between items that appear in the same session, in any order."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import register_model
from sessionrec.models.baselines._item_to_item import ItemToItemRecommender
from sessionrec.models.baselines._sparse import (
    DISTANCE_WEIGHTS,
    check_choice,
    check_positive,
    drop_diagonal,
    event_pairs_by_distance,
    incidence,
)


@register_model
class AssociationRules(ItemToItemRecommender):
    """Association rules (pairs of events of one session, either order).

    ``R[i, j] = sum over sessions, over ordered pairs of positions p != q with x_p = i,
    x_q = j and i != j, of w(|p - q|)``; the score after a prefix is ``R[x_n, j]`` (last item).

    ``weighting`` picks ``w(d)``: ``"same"`` 1 (default: plain pair counts, so
    ``R[i, j] = sum_s c_s(i) c_s(j)`` with ``c_s`` the in-session counts), ``"div"`` 1/d,
    ``"quadratic"`` 1/d², ``"linear"`` max(1 - 0.1 (d - 1), 0). Unlike ``cooc`` a session
    with repeated items counts every pair of events, and the rules are pruned:
    ``pruning`` (default 20, 0 = keep all) keeps the largest weights of each row.
    """

    name = "ar"

    def __init__(self, weighting: str = "same", pruning: int = 20) -> None:
        super().__init__(weighting=weighting, pruning=pruning)
        check_choice("weighting", weighting, tuple(DISTANCE_WEIGHTS))
        check_positive("pruning", pruning, allow_zero=True)
        self.weighting = weighting
        self.pruning = int(pruning)

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        if self.weighting == "same":
            counts = incidence(train, binary=False)
            return drop_diagonal(counts.T @ counts)
        weight = DISTANCE_WEIGHTS[self.weighting]
        rows, cols, vals = [], [], []
        for earlier, later, d in event_pairs_by_distance(train, None):
            w = weight(d)
            if w == 0:
                break  # all weightings are non-increasing in d
            a, b = train.items[earlier], train.items[later]
            rows += [a, b]
            cols += [b, a]
            vals.append(np.full(2 * len(a), w))
        shape = (train.n_items, train.n_items)
        if not rows:
            return sp.csr_matrix(shape)
        m = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
        )
        return drop_diagonal(m)
