"""V-SKNN: session-kNN where the recent items of the session weigh more (Ludewig & Jannach)."""

from __future__ import annotations

import numpy as np

from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.baselines._session_index import PrefixBatch
from sessionrec.models.baselines._sparse import check_choice
from sessionrec.models.baselines.sknn import SessionKNN

WEIGHTINGS = ("linear", "div", "quadratic", "same")
SIMILARITIES = ("cosine", "dot")


@register_model
class VectorSessionKNN(SessionKNN):
    """Vector-multiplied session-kNN.

    As :class:`SessionKNN`, but the prefix ``x_1..x_n`` is a weighted vector: distinct item
    ``i`` whose latest occurrence is at (1-based) position ``p`` gets

    * ``weighting="linear"`` (default): ``w(i) = p / n`` (the last item 1, linear decay back);
    * ``"div"``: ``1 / (n - p + 1)``; ``"quadratic"``: ``(p / n)^2``; ``"same"``: 1;
    * times ``idf(i) = log(S / n_i)`` with ``idf=True`` (``S`` training sessions, ``n_i`` of
      them containing ``i``).

    Similarity to a training session ``t`` (binary vector ``b_t``):
    ``similarity="cosine"`` (default): ``w · b_t / (||w|| * sqrt(|t|))``;
    ``"dot"``: ``w · b_t`` (sum of the weights of the shared items). Candidates, the top-``k``
    selection and ``score(j) = sum over neighbours t containing j of sim(s, t)`` are those
    of SKNN. Defaults ``k=100, sample_size=500``.
    """

    name = "vsknn"

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 500,
        weighting: str = "linear",
        idf: bool = False,
        similarity: str = "cosine",
    ) -> None:
        # SessionRecommender.__init__ directly: SKNN's __init__ takes only k and sample_size
        SessionRecommender.__init__(self, k=k, sample_size=sample_size, weighting=weighting,
                                    idf=idf, similarity=similarity)
        self._set_neighbourhood(k, sample_size)
        self.weighting = check_choice("weighting", weighting, WEIGHTINGS)
        self.idf = bool(idf)
        self.similarity = check_choice("similarity", similarity, SIMILARITIES)

    def _query_weights(self, query: PrefixBatch) -> np.ndarray:
        p = query.last_position.astype(np.float64)
        n = query.length[query.prefix].astype(np.float64)
        if self.weighting == "linear":
            w = p / n
        elif self.weighting == "div":
            w = 1.0 / (n - p + 1.0)
        elif self.weighting == "quadratic":
            w = (p / n) ** 2
        else:
            w = np.ones_like(p)
        if self.idf:
            df = self.index_.document_frequency[query.item]
            w = w * np.log(self.index_.n_sessions / np.maximum(df, 1))
        return w

    def _similarity(self, query: PrefixBatch, weights: np.ndarray, dot: np.ndarray,
                    prefix: np.ndarray, session: np.ndarray) -> np.ndarray:
        if self.similarity == "dot":
            return dot
        return super()._similarity(query, weights, dot, prefix, session)
