"""POP: recommend the most popular training items, whatever the session."""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.scores import SparseScores


@register_model
class Popularity(SessionRecommender):
    """Most-popular baseline.

    ``score(j) = count(j) / max_i count(i)``, where ``count(j)`` is the number of training
    events on item ``j``: the training frequency, scaled to [0, 1] (the base class already
    keeps it as ``popularity_``). Every prefix gets the same scores. No hyper-parameters.
    """

    name = "pop"

    def __init__(self) -> None:
        super().__init__()

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        """Nothing beyond ``popularity_``, which :meth:`fit` has set."""

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        return self.popularity_.unsqueeze(0).repeat(len(prefixes), 1)

    def _score_sparse(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> SparseScores:
        return SparseScores.broadcast(self.popularity_.float(), len(prefixes))
