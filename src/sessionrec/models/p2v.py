"""p2v: prod2vec as a session recommender (seed 004, the Exponea talk).

Fitting trains (Meta-)Prod2Vec on the training sessions (item metadata tokens when the
vocabulary has brand / category / price and ``lambda_meta > 0``; see
:mod:`sessionrec.embeddings.metaprod2vec`) and keeps each item's unit vector ``u_i``. After a
prefix ``x_1 .. x_t`` the session vector is the recency-weighted mean of the last ``last_n``
viewed products::

    s = sum_{j=0}^{m-1} decay^j * u_{x_(t-j)},    m = min(t, last_n)

and the score of item ``i`` is ``cos(s, u_i) + pop_weight * popularity_i`` (popularity scaled
to a maximum of 1). With ``exclude_viewed`` the prefix's own items score -2, below any other
item (a cosine is at least -1). Scores are
exact over every item (evaluation); serving asks the ANN index (:meth:`topk_from_state`) for
``k`` candidates per extra excluded item, then re-ranks them with the popularity term.

Training options of the talk: ``min_dwell`` drops clicks followed by a quick bounce before
training (:mod:`sessionrec.embeddings.bounces`); ``negatives="category"`` draws an item
context's negatives from its own category (see ``MetaProd2VecConfig.negatives_from``).

Serving state: the indices of the last ``last_n`` items (float32, -1 for none), oldest first.

Cold start in serving: fitting keeps the metadata token vectors (``token_vectors_``), from
which ``sessionrec embed --from-run`` places catalogue products without views in this model's
space (:mod:`sessionrec.embeddings.coldstart`); :meth:`add_cold` makes such vectors servable
as items ``n_items .. n_items + n_cold - 1`` (searched exactly beside the ANN index, scored
without a popularity term since they have none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.ann import EXACT_BELOW, AnnIndex, index_for_store
from sessionrec.embeddings.bounces import drop_quick_bounces
from sessionrec.embeddings.metadata import MetadataTokens, item_metadata_tokens
from sessionrec.embeddings.metaprod2vec import MetaProd2VecConfig, train
from sessionrec.errors import ConfigError
from sessionrec.models.base import SessionRecommender, register_model

VIEWED = -2.0  # the score of a viewed item with exclude_viewed: below every cosine


@register_model
class Prod2VecRecommender(SessionRecommender):
    """Session vector = recency-weighted mean of the last viewed products' prod2vec vectors."""

    name = "p2v"

    def __init__(self, dim: int = 64, window: int = 3, epochs: int = 2, negatives: int = 5,
                 lambda_meta: float = 1.0, lr: float = 0.1, last_n: int = 5,
                 decay: float = 0.7, pop_weight: float = 0.0, exclude_viewed: bool = False,
                 min_dwell: float = 0.0, negatives_from: str = "unigram", seed: int = 0,
                 threads: int = 1) -> None:
        super().__init__(dim=dim, window=window, epochs=epochs, negatives=negatives,
                         lambda_meta=lambda_meta, lr=lr, last_n=last_n, decay=decay,
                         pop_weight=pop_weight, exclude_viewed=exclude_viewed,
                         min_dwell=min_dwell, negatives_from=negatives_from, seed=seed,
                         threads=threads)
        if last_n < 1:
            raise ConfigError(f"p2v.last_n must be >= 1, got {last_n}")
        if not 0 < decay <= 1:
            raise ConfigError(f"p2v.decay must lie in (0, 1], got {decay}")
        if pop_weight < 0:
            raise ConfigError(f"p2v.pop_weight must be >= 0, got {pop_weight}")
        self.embedding = MetaProd2VecConfig(dim=dim, window=window, epochs=epochs,
                                            negatives=negatives, lambda_meta=lambda_meta, lr=lr,
                                            negatives_from=negatives_from, seed=seed,
                                            threads=threads)
        self.last_n, self.decay, self.pop_weight = int(last_n), float(decay), float(pop_weight)
        self.exclude_viewed, self.min_dwell = bool(exclude_viewed), float(min_dwell)
        self.item_table: pl.DataFrame | None = None
        self.ann: AnnIndex | None = None
        self.cold = torch.zeros(0, dim)  # cold-start products (serving; not learned: add_cold)

    def set_item_table(self, items: pl.DataFrame) -> None:
        """The vocabulary (``items.parquet``) whose brand / category / price become tokens."""
        self.item_table = items

    # -- fitting ----------------------------------------------------------------------------
    def _fit(self, train_sessions: Sessions, valid: Sessions | None) -> None:
        sessions, self.bounces_dropped_ = drop_quick_bounces(train_sessions, self.min_dwell)
        tokens = MetadataTokens.empty(self.n_items_)
        if self.item_table is not None:  # train() ignores them when lambda_meta is 0
            tokens = item_metadata_tokens(self.item_table)
        model = train(sessions, tokens, self.embedding)
        vectors = model.item_vectors().numpy()
        trained = np.bincount(sessions.items, minlength=self.n_items_) > 0
        vectors = np.where(trained[:, None], vectors, 0.0)  # an untrained row is noise
        self.vectors_ = torch.nn.functional.normalize(torch.from_numpy(vectors).float(), dim=1)
        self.token_vectors_ = model.token_vectors().float().clone()  # cold start from metadata

    # -- scoring ----------------------------------------------------------------------------
    def weights(self, m: int) -> torch.Tensor:
        """Recency weights of the last ``m`` items, oldest first: decay^(m-1) .. decay^0."""
        return self.decay ** torch.arange(m - 1, -1, -1, dtype=torch.float32)

    def session_vectors(self, prefixes: list[np.ndarray]) -> torch.Tensor:
        """Unit session vectors [B, dim] of non-empty prefixes (cold items included)."""
        space = self._space()
        rows = []
        for p in prefixes:
            last = torch.from_numpy(np.asarray(p[-self.last_n :], dtype=np.int64))
            rows.append(self.weights(len(last)) @ space[last])
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        scores = self.session_vectors(prefixes) @ self.vectors_.T
        if self.pop_weight:
            scores += self.pop_weight * self.popularity_
        if self.exclude_viewed:
            for row, p in enumerate(prefixes):
                scores[row, torch.from_numpy(np.asarray(p, dtype=np.int64))] = VIEWED
        return scores

    def item_embeddings(self) -> torch.Tensor:
        """The unit item vectors (similar products in serving), then any cold-start ones."""
        return self._space()

    # -- cold start (serving) -----------------------------------------------------------------
    @property
    def n_cold(self) -> int:
        return int(self.cold.shape[0])

    def add_cold(self, vectors: np.ndarray) -> None:
        """Serve ``vectors`` [m, dim] (cold-start products, placed in this model's space from
        their metadata) as items ``n_items .. n_items + m - 1``."""
        self._check_fitted()
        v = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        v = v.reshape(-1, self.vectors_.shape[1])
        self.cold = torch.nn.functional.normalize(v, dim=1)
        self._space_cache = None

    def _space(self) -> torch.Tensor:
        """The served item vectors: trained items, then cold-start products."""
        if not self.n_cold:
            return self.vectors_
        cached = getattr(self, "_space_cache", None)
        if cached is None:
            cached = self._space_cache = torch.cat([self.vectors_, self.cold])
        return cached

    # -- serving ----------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        return self.last_n

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.full((n, self.last_n), -1.0)

    def advance(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Append each clicked item (``-1`` or an unknown item: state unchanged)."""
        moved = torch.cat([states[:, 1:], items[:, None].float()], dim=1)
        known = (items >= 0) & (items < self.n_items_ + self.n_cold)
        return torch.where(known[:, None], moved, states)

    def _state_prefixes(self, states: torch.Tensor) -> list[np.ndarray]:
        n = self.n_items_ + self.n_cold  # a state of a bundle with more cold products: dropped
        return [s[(s >= 0) & (s < n)].astype(np.int64) for s in states.numpy()]

    def scores_from_state(self, states: torch.Tensor) -> torch.Tensor:
        """Scores [n, n_items + n_cold]: the trained items, then the cold-start products."""
        prefixes = self._state_prefixes(states)
        if not self.n_cold:
            return self.score(prefixes)
        out = torch.zeros(len(prefixes), self.n_items_ + self.n_cold)
        rows = [r for r, p in enumerate(prefixes) if len(p)]
        out[[r for r, p in enumerate(prefixes) if not len(p)], : self.n_items_] = self.popularity_
        if rows:
            out[rows] = self.session_vectors([prefixes[r] for r in rows]) @ self._space().T
            out[rows, : self.n_items_] += self.pop_weight * self.popularity_
            if self.exclude_viewed:
                for r in rows:
                    out[r, torch.from_numpy(prefixes[r])] = VIEWED
        return out

    def use_index(self, beside: Path, *, min_items: int | None = None) -> AnnIndex | None:
        """Load (or build and save) the ANN index of the vectors at ``beside.ann.npz``; exact
        search stays for catalogues under ``min_items``."""
        self._check_fitted()
        self.ann = None
        if self.n_items_ >= (EXACT_BELOW if min_items is None else min_items):
            self.ann = index_for_store(Path(beside), self.vectors_.numpy())
        return self.ann

    def topk_from_state(self, states: torch.Tensor, k: int, exclude: list[np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items by ANN (exact without an index), never an item of ``exclude[row]``.

        Returns float32 scores [n, k'] and int64 items [n, k'] (-inf / -1 where fewer than k
        candidates were found).
        """
        prefixes = self._state_prefixes(states)
        k = min(int(k), self.n_items_ + self.n_cold)
        if self.ann is None:
            scores = self.scores_from_state(states)
            for row, ex in enumerate(exclude):
                scores[row, torch.from_numpy(np.asarray(ex, dtype=np.int64))] = float("-inf")
            values, indices = torch.topk(scores, k, dim=1)
            return values.numpy(), indices.numpy()
        out_v = np.full((len(prefixes), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(prefixes), k), -1, dtype=np.int64)
        for row, p in enumerate(prefixes):
            banned = set(np.asarray(exclude[row]).tolist())
            if self.exclude_viewed:
                banned |= set(p.tolist())
            if not len(p):
                cand = torch.topk(self.popularity_, min(k + len(banned), self.n_items_))[1]
                cand, sims = cand.numpy(), self.popularity_[cand].numpy()
            else:
                wide = min(self.n_items_, 4 * k + len(banned) if self.pop_weight else
                           k + len(banned))
                cand, sims = self.ann.search(self.session_vectors([p]).numpy(), wide)
                cand, sims = cand[0], sims[0] + self.pop_weight * self.popularity_.numpy()[
                    np.maximum(cand[0], 0)]
                cand, sims = self._with_cold(p, cand, sims, k + len(banned))
            keep = np.array([c >= 0 and c not in banned for c in cand], dtype=bool)
            cand, sims = cand[keep], sims[keep]
            order = np.argsort(-sims, kind="stable")[:k]
            out_i[row, : len(order)], out_v[row, : len(order)] = cand[order], sims[order]
        return out_v, out_i

    def _with_cold(self, prefix: np.ndarray, cand: np.ndarray, sims: np.ndarray, wide: int
                   ) -> tuple[np.ndarray, np.ndarray]:
        """ANN candidates plus the ``wide`` cold-start products closest to the session (exact
        cosine; a cold product has no popularity)."""
        if not self.n_cold:
            return cand, sims
        cold = (self.cold @ self.session_vectors([prefix])[0]).numpy()
        top = np.argsort(-cold, kind="stable")[:wide]
        return (np.concatenate([cand, self.n_items_ + top]),
                np.concatenate([sims, cold[top]]).astype(np.float32))

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        state = {"vectors_": self.vectors_}
        if getattr(self, "token_vectors_", None) is not None:
            state["token_vectors_"] = self.token_vectors_
        return state

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.vectors_ = state.pop("vectors_")
        # absent in models saved before cold start was served: they cannot place new products
        self.token_vectors_ = state.pop("token_vectors_", None)
        super()._set_state(state)
