"""SR: sequential rules, item j following item i within a few steps of the same session."""

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
)


@register_model
class SequentialRules(ItemToItemRecommender):
    """Sequential rules with distance weighting (after Ludewig & Jannach's definition).

    ``R[i, j] = sum over sessions, over positions p < q <= p + steps with x_p = i, x_q = j, of
    w(q - p)``; the score after a prefix is ``R[x_n, j]`` (last item). With
    ``self_pairs=False`` the rules i -> i (an item clicked again) are left out; the default
    keeps them, because repeated clicks are common next events in click logs (yoochoose-100k:
    leaving them out costs about a third of Recall@20, see docs/results.md).

    ``weighting`` picks ``w(d)``: ``"div"`` 1/d (default), ``"same"`` 1, ``"quadratic"``
    1/d², ``"linear"`` max(1 - 0.1 (d - 1), 0). Defaults: ``steps=10``, ``pruning=20``
    (keep the 20 largest rules of each item; 0 = keep all).
    """

    name = "sr"

    def __init__(self, steps: int = 10, weighting: str = "div", pruning: int = 20,
                 self_pairs: bool = True) -> None:
        super().__init__(steps=steps, weighting=weighting, pruning=pruning,
                         self_pairs=self_pairs)
        self.self_pairs = bool(self_pairs)
        check_positive("steps", steps)
        check_choice("weighting", weighting, tuple(DISTANCE_WEIGHTS))
        check_positive("pruning", pruning, allow_zero=True)
        self.steps = int(steps)
        self.weighting = weighting
        self.pruning = int(pruning)

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        weight = DISTANCE_WEIGHTS[self.weighting]
        rows, cols, vals = [], [], []
        for earlier, later, d in event_pairs_by_distance(train, self.steps):
            rows.append(train.items[earlier])
            cols.append(train.items[later])
            vals.append(np.full(len(earlier), weight(d)))
        shape = (train.n_items, train.n_items)
        if not rows:
            return sp.csr_matrix(shape)
        m = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
        )
        return m if self.self_pairs else drop_diagonal(m)
