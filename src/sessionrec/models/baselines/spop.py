"""S-POP: items of the current session first, ordered by how often the session saw them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.baselines._sparse import flatten_prefixes


@register_model
class SessionPopularity(SessionRecommender):
    """Session-popular baseline.

    ``score(j | s) = c_s(j) + 0.5 * pop(j)`` where ``c_s(j)`` is the number of times item
    ``j`` occurs in the prefix ``s`` and ``pop(j) = count(j) / max_i count(i)`` is the
    training popularity in [0, 1]. As ``0.5 * pop < 1``, an item seen more often in the
    session always ranks higher; equal in-session counts (including 0, i.e. every item not in
    the session) are ordered by training popularity. Items never seen in training and not in
    the session score exactly 0. No hyper-parameters.
    """

    name = "spop"

    def __init__(self) -> None:
        super().__init__()

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        """Nothing beyond ``popularity_``, which :meth:`fit` has set."""

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        items, owner, _, _ = flatten_prefixes(prefixes)
        counts = sp.csr_matrix(
            (np.ones(len(items), dtype=np.float32), (owner, items)),
            shape=(len(prefixes), self.n_items_),
        ).toarray()
        return torch.from_numpy(counts) + 0.5 * self.popularity_.unsqueeze(0)
