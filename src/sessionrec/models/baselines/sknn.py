"""SKNN: session-based k-nearest neighbours (Jannach & Ludewig, RecSys 2017)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.baselines._session_index import (
    PrefixBatch,
    SessionIndex,
    chunks,
    top_k_pairs,
)
from sessionrec.models.baselines._sparse import check_positive
from sessionrec.models.scores import SparseScores

# Up to this many prefixes, dense scores are summed directly (live requests); more go through
# the sparse product (evaluation, large batches).
DIRECT_ROWS = 64


@register_model
class SessionKNN(SessionRecommender):
    """Session-kNN with binary cosine similarity.

    For a prefix ``s`` (its set of distinct items) and a training session ``t``:

    1. candidates: the ``sample_size`` most recent training sessions (by their last event)
       that share at least one item with ``s``;
    2. ``sim(s, t) = |s ∩ t| / sqrt(|s| * |t|)`` (cosine of the binary item vectors);
    3. neighbours ``N(s)``: the ``k`` candidates with the highest ``sim`` (ties: the more
       recent session);
    4. ``score(j) = sum over t in N(s) with j in t of sim(s, t)``; items in no neighbour
       score exactly 0.

    Defaults ``k=100, sample_size=500`` (the usual SKNN starting point; tune per dataset).
    """

    name = "sknn"

    def __init__(self, k: int = 100, sample_size: int = 500) -> None:
        super().__init__(k=k, sample_size=sample_size)
        self._set_neighbourhood(k, sample_size)

    def _set_neighbourhood(self, k: int, sample_size: int) -> None:
        check_positive("k", k)
        check_positive("sample_size", sample_size)
        self.k = int(k)
        self.sample_size = int(sample_size)

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self.index_ = SessionIndex.build(train)

    # -- the parts V-SKNN changes -----------------------------------------------------------
    def _query_weights(self, query: PrefixBatch) -> np.ndarray:
        """Weight of each distinct (prefix, item) entry of ``query``: 1 for SKNN."""
        return np.ones(len(query.item))

    def _similarity(self, query: PrefixBatch, weights: np.ndarray, dot: np.ndarray,
                    prefix: np.ndarray, session: np.ndarray) -> np.ndarray:
        """Cosine: ``dot / (||w_s|| * sqrt(|t|))`` for each candidate pair."""
        norm = np.sqrt(np.bincount(query.prefix, weights=weights**2, minlength=query.size))
        denom = norm[prefix] * np.sqrt(self.index_.n_distinct[session])
        return np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if len(prefixes) <= DIRECT_ROWS and len(chunks(prefixes, self.sample_size)) == 1:
            return self._score_direct(prefixes)
        return self._score_sparse(prefixes, users).dense()

    def _neighbours(self, prefixes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
        """``(prefix, session, similarity)`` of the chosen ``k`` neighbours of each prefix,
        sorted by prefix, then session."""
        query = PrefixBatch.build(prefixes, self.n_items_)
        weights = self._query_weights(query)
        prefix, session, dot, _ = self.index_.candidates(query, self.sample_size, weights)
        sim = self._similarity(query, weights, dot, prefix, session)
        chosen = top_k_pairs(prefix, session, sim, self.k)
        return prefix[chosen], session[chosen], sim[chosen]

    def _score_direct(self, prefixes: list[np.ndarray]) -> torch.Tensor:
        """Dense scores of a few prefixes (a live request) without building sparse matrices:
        each neighbour's similarity is added to its items' scores. The sums run in the
        order of the sparse product in :meth:`_score_chunk` (per item, neighbours by
        session, in float64), so both give the same float32 scores."""
        keys, sums = self._direct_sums(prefixes)
        out = torch.zeros(len(prefixes) * self.n_items_)
        out[torch.from_numpy(keys)] = torch.from_numpy(sums.astype(np.float32))
        return out.view(len(prefixes), self.n_items_)

    def _direct_sums(self, prefixes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, sums)``: for every (prefix, item) a neighbour gives a score, the key
        ``prefix * n_items + item`` (ascending) and the float64 sum of the similarities of
        the neighbours that contain the item, added in session order."""
        prefix, session, sim = self._neighbours(prefixes)
        owner, items = self.index_.expand_items(session)
        keys, slot = np.unique(prefix[owner] * self.n_items_ + items, return_inverse=True)
        return keys, np.bincount(slot, weights=sim[owner], minlength=len(keys))

    def _score_sparse(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> SparseScores:
        parts = [self._score_chunk(prefixes[sl]) for sl in chunks(prefixes, self.sample_size)]
        return parts[0] if len(parts) == 1 else SparseScores.concat(parts)

    def _score_chunk(self, prefixes: list[np.ndarray]) -> SparseScores:
        index = self.index_
        prefix, session, sim = self._neighbours(prefixes)
        # score(j) = sum over the chosen neighbours t containing j of sim(s, t): a product of
        # the [prefixes x sessions] similarity matrix with the sessions' 0/1 item matrix (C++,
        # float64 sums; no sort of every (prefix, neighbour item) triplet)
        weights = sp.csr_matrix((sim, (prefix, session)),
                                shape=(len(prefixes), index.n_sessions))
        scores = weights @ index.incidence
        scores.sort_indices()
        return SparseScores.from_csr(scores.astype(np.float32))

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        return self.index_.state()

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.index_ = SessionIndex.from_state(self, state, sequences=False)
