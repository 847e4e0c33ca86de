"""STAN: sequence- and time-aware neighbourhood (Garg et al., SIGIR 2019)."""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.baselines._session_index import (
    PrefixBatch,
    SessionIndex,
    chunks,
    top_k_pairs,
)
from sessionrec.models.baselines._sparse import check_positive, group_rank
from sessionrec.models.scores import SparseScores

SECONDS_PER_DAY = 86_400.0


@register_model
class STAN(SessionRecommender):
    """Session-kNN with three exponential decays.

    For a prefix ``x_1..x_n`` with distinct items ``s`` (``l(s) = |s|``) and a training session
    ``t`` (distinct items, ``l(t) = |t|``; last event at time ``τ(t)``):

    1. position in the prefix: item ``i`` whose latest occurrence is at 1-based position ``p``
       weighs ``w1(i) = exp((p - n) / lambda_spw)``;
       ``sim1(s, t) = sum over i in s ∩ t of w1(i) / sqrt(l(s) * l(t))``;
    2. recency of the neighbour: ``sim2(s, t) = sim1(s, t) * exp(-(T - τ(t)) / lambda_snh)``,
       with ``lambda_snh`` in days and ``T`` the time of the last training event. Scoring
       gets no timestamps; for a prefix at any time ``t_s >= T`` the paper's
       ``exp(-(t_s - τ(t)) / lambda_snh)`` is this times the constant ``exp(-(t_s - T) /
       lambda_snh)``, so neighbours and rankings are the same, only the scale differs;
    3. candidates are the ``sample_size`` most recent sessions sharing an item with ``s``;
       neighbours ``N(s)`` the ``k`` of them with the highest ``sim2`` (ties: more recent);
    4. position in the neighbour: ``i*(s, t)`` is the item of ``s ∩ t`` that occurs latest in
       the prefix; item ``j`` of ``t`` is ``d`` events away from it, ``d`` the smallest
       distance between an occurrence of ``j`` and one of ``i*`` in ``t`` (``d = 0`` for
       ``i*`` itself), and ``w3(j, t) = exp(-d / lambda_inh)``;
    5. ``score(j) = sum over t in N(s) with j in t of sim2(s, t) * w3(j, t)``; items in no
       neighbour score exactly 0.

    Defaults are starting points, not values tuned for any dataset here; tune them:
    ``k=100, sample_size=5000, lambda_spw=1.02, lambda_snh=5.0`` (days), ``lambda_inh=2.05``.
    """

    name = "stan"

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float = 5.0,
        lambda_inh: float = 2.05,
    ) -> None:
        super().__init__(k=k, sample_size=sample_size, lambda_spw=lambda_spw,
                         lambda_snh=lambda_snh, lambda_inh=lambda_inh)
        for name, value in self.get_params().items():
            check_positive(name, value)
        self.k = int(k)
        self.sample_size = int(sample_size)
        self.lambda_spw = float(lambda_spw)
        self.lambda_snh = float(lambda_snh)
        self.lambda_inh = float(lambda_inh)

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self.index_ = SessionIndex.build(train, sequences=True)

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        return self._score_sparse(prefixes, users).dense()

    def _score_sparse(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> SparseScores:
        parts = [self._score_chunk(prefixes[sl]) for sl in chunks(prefixes, self.sample_size)]
        return parts[0] if len(parts) == 1 else SparseScores.concat(parts)

    def _score_chunk(self, prefixes: list[np.ndarray]) -> SparseScores:
        index = self.index_
        query = PrefixBatch.build(prefixes, self.n_items_)
        n = query.length[query.prefix]
        w1 = np.exp((query.last_position - n) / self.lambda_spw)

        # similarity of every candidate (prefix, session) pair
        prefix, session, dot, latest = index.candidates(query, self.sample_size, w1)
        sim1 = dot / np.sqrt(query.n_distinct[prefix] * index.n_distinct[session])
        age = (index.times[0] - index.times[session]) / (self.lambda_snh * SECONDS_PER_DAY)
        sim2 = sim1 * np.exp(-age)
        chosen = top_k_pairs(prefix, session, sim2, self.k)
        prefix, session, sim2, latest = (a[chosen] for a in (prefix, session, sim2, latest))

        # i*: the shared item that occurs latest in the prefix (latest >= 1: pairs share one)
        anchor = query.flat_items[query.flat_start[prefix] + latest - 1]
        pair, item, pos = index.expand_sequences(session)
        w3 = np.exp(-self._distance_to_anchor(pair, item, pos, anchor) / self.lambda_inh)

        # an item repeated in a neighbour counts once, with its closest occurrence
        key = pair * self.n_items_ + item
        order = np.lexsort((-w3, key))
        first = order[group_rank(key[order]) == 0]
        return SparseScores.from_triplets(prefix[pair[first]], item[first],
                                          sim2[pair[first]] * w3[first],
                                          (len(prefixes), self.n_items_))

    @staticmethod
    def _distance_to_anchor(
        pair: np.ndarray, item: np.ndarray, pos: np.ndarray, anchor: np.ndarray
    ) -> np.ndarray:
        """For each event, the distance to the nearest occurrence of its pair's anchor item.

        ``pair`` is sorted and ``pos`` ascending within a pair (as expand_sequences returns
        them); every pair contains its anchor at least once.
        """
        span = int(pos.max(initial=0)) + 1
        key = pair * span + pos
        hits = key[item == anchor[pair]]  # sorted, as key is
        nxt = np.searchsorted(hits, key)
        after = np.minimum(nxt, len(hits) - 1)
        before = np.maximum(nxt - 1, 0)
        inf = np.iinfo(np.int64).max
        d_after = np.where(hits[after] // span == pair, hits[after] - key, inf)
        d_after = np.where(hits[after] >= key, d_after, inf)
        d_before = np.where((hits[before] // span == pair) & (hits[before] <= key),
                            key - hits[before], inf)
        return np.minimum(d_after, d_before).astype(np.float64)

    def _state(self) -> dict[str, torch.Tensor]:
        return self.index_.state()

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.index_ = SessionIndex.from_state(self, state, sequences=True)
