"""First-order Markov chain: what followed the session's last item in training."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import register_model
from sessionrec.models.baselines._item_to_item import ItemToItemRecommender


@register_model
class MarkovChain(ItemToItemRecommender):
    """First-order Markov baseline.

    ``T[i, j]`` = number of times item ``j`` directly followed item ``i`` in a training
    session (self-transitions ``i -> i`` included: a repeated click is a transition too).
    Score after a prefix: ``T[x_n, j]``; with ``normalize=True`` the row is divided by its
    sum, giving the maximum-likelihood ``P(j | x_n)`` (the same ranking, scores in [0, 1]).
    """

    name = "markov"

    def __init__(self, normalize: bool = False) -> None:
        super().__init__(normalize=normalize)
        self.normalize = bool(normalize)

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        session = train.session_of_event()
        follows = np.flatnonzero(session[1:] == session[:-1])  # event e+1 follows event e
        m = sp.csr_matrix(
            (np.ones(len(follows)), (train.items[follows], train.items[follows + 1])),
            shape=(train.n_items, train.n_items),
        )
        m.sum_duplicates()
        if self.normalize:
            totals = np.asarray(m.sum(axis=1)).ravel()
            m = sp.diags(1.0 / np.maximum(totals, 1.0)) @ m
        return m.tocsr()
