"""The stateless model step: (session states, clicked items) -> (new states, top-k items).

Serving needs a recurrent interface (:class:`~sessionrec.models.capabilities.RecurrentStep`):

* ``state_size``, ``initial_state(n)`` -> float32 [n, state_size];
* ``advance(states, items)`` -> new states (an unknown item, e.g. -1, leaves a state as is);
* ``scores_from_state(states)`` -> float32 [n, n_items].

GRU4Rec and HGRU4Rec have it. Every other model (V-SKNN, STAN, the rules, NARM, STAMP, ...) is
served through a :class:`~sessionrec.models.prefix_step.PrefixStep`: the state holds the
session's last N items and the scores are the model's ``score`` of them (N: the model's own
``prefix_len`` where it declares one, else ``prefix_items``).

Models with a user-level state (:class:`~sessionrec.models.capabilities.UserStateful`,
HGRU4Rec) carry it across a user's sessions; with
:class:`~sessionrec.models.capabilities.LearnedUserStates` a user the store does not know yet
starts from the state the model learned for them (a user's index comes from the prepared
data's ``users.parquet``).

Everything runs batched in ``torch.inference_mode()``. Top-k never returns blocked items or,
on request, the session's own items; items that are excluded can make the list shorter
than ``k``, never padded with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sessionrec.errors import SessionRecError
from sessionrec.models.base import SessionRecommender
from sessionrec.models.capabilities import (
    ApproximateTopK,
    ItemEmbeddings,
    LearnedUserStates,
    PrefixWindow,
    RecurrentStep,
    UserStateful,
)
from sessionrec.models.prefix_step import PrefixStep

DEFAULT_PREFIX_ITEMS = 50


def as_recurrent(model: object, prefix_items: int = DEFAULT_PREFIX_ITEMS) -> RecurrentStep:
    """``model`` itself when it is recurrent, else a prefix step over its last N items."""
    if isinstance(model, RecurrentStep):
        return model
    if isinstance(model, SessionRecommender):
        n = model.prefix_len if isinstance(model, PrefixWindow) else prefix_items
        return PrefixStep(model, n)
    raise SessionRecError(f"{type(model).__name__} is neither a session recommender nor a "
                          "recurrent model: it cannot be served")


class ModelStep:
    """A loaded model behind the batched step interface (recurrent, or a prefix window)."""

    def __init__(self, model, blocked: np.ndarray | None = None,
                 prefix_items: int = DEFAULT_PREFIX_ITEMS) -> None:
        self.recommender = model  # the loaded model itself
        self.model = as_recurrent(model, prefix_items)  # what serving steps (maybe a window)
        self.kind = "recurrent" if self.model is model else "prefix"
        self.n_items = int(model.n_items_)
        self.state_size = int(self.model.state_size)
        self.user_state_size = (int(model.user_state_size) if isinstance(model, UserStateful)
                                else 0)
        self.blocked = torch.as_tensor(
            np.unique(np.asarray([] if blocked is None else blocked, dtype=np.int64)))

    @property
    def has_user_state(self) -> bool:
        return self.user_state_size > 0

    def start_states(self, user_states: np.ndarray | None, n: int) -> np.ndarray:
        """First states of ``n`` sessions: from their users' states, or the model's initial."""
        with torch.inference_mode():
            if user_states is None or not self.has_user_state:
                return self.model.initial_state(n).numpy().astype(np.float32)
            users = torch.from_numpy(np.asarray(user_states, dtype=np.float32).reshape(n, -1))
            return self.model.session_start_state(users).numpy().astype(np.float32)

    def advance_users(self, user_states: np.ndarray, session_states: np.ndarray) -> np.ndarray:
        """User states after their sessions (final states ``session_states``) ended."""
        if not self.has_user_state:
            raise SessionRecError(f"model {self.model.name!r} keeps no user state")
        with torch.inference_mode():
            users = torch.from_numpy(np.asarray(user_states, dtype=np.float32))
            sessions = torch.from_numpy(np.asarray(session_states, dtype=np.float32))
            return self.model.advance_user(users, sessions).numpy().astype(np.float32)

    def first_user_state(self, user_index: int = -1) -> np.ndarray:
        """The state of a user the store has no record of: what the model learned for its
        training user ``user_index`` (``user_state_of``), else zeros."""
        if user_index >= 0 and isinstance(self.model, LearnedUserStates):
            with torch.inference_mode():
                state = self.model.user_state_of(np.array([user_index], dtype=np.int64))
            return state[0].numpy().astype(np.float32)
        return np.zeros(self.user_state_size, dtype=np.float32)

    def step(self, states: np.ndarray, items: np.ndarray, k: int,
             exclude: Sequence[np.ndarray] | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``states`` [n, S] by ``items`` [n] (-1: no click) and rank every item.

        Returns the new states (float32 [n, S]), top-k item indices (int64 [n, k']) and their
        scores (float32 [n, k'], ``-inf`` marks an excluded slot when fewer than ``k`` items
        are allowed), ``k' = min(k, n_items)``. ``exclude[i]`` are extra items never
        recommended to row ``i`` (its seen items).
        """
        if k < 1:
            raise SessionRecError(f"k must be at least 1, got {k}")
        with torch.inference_mode():
            s = torch.from_numpy(np.ascontiguousarray(states, dtype=np.float32))
            it = torch.from_numpy(np.asarray(items, dtype=np.int64))
            new = self.model.advance(s, it) if bool((it >= 0).any()) else s
            if isinstance(self.model, ApproximateTopK):  # an ANN index, no full scores
                values, indices = self.model.topk_from_state(new, k, self._banned(len(new),
                                                                                  exclude))
                return new.numpy().astype(np.float32, copy=False), indices, values
            scores = self.model.scores_from_state(new)
            values, indices = self._topk(scores, k, exclude)
            return new.numpy().astype(np.float32, copy=False), indices, values

    def _banned(self, n: int, exclude: Sequence[np.ndarray] | None) -> list[np.ndarray]:
        """Items never recommended to each of ``n`` rows: the blocked ones and ``exclude``."""
        blocked = self.blocked.numpy()
        return [np.concatenate([blocked, np.asarray(exclude[r] if exclude is not None else [],
                                                    dtype=np.int64)]) for r in range(n)]

    def _topk(self, scores: torch.Tensor, k: int, exclude: Sequence[np.ndarray] | None,
              ) -> tuple[np.ndarray, np.ndarray]:
        if len(self.blocked):
            scores.index_fill_(1, self.blocked, float("-inf"))
        if exclude is not None:
            rows = [np.full(len(e), r, dtype=np.int64) for r, e in enumerate(exclude) if len(e)]
            if rows:
                cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude if len(e)])
                scores[torch.from_numpy(np.concatenate(rows)), torch.from_numpy(cols)] = (
                    float("-inf"))
        values, indices = torch.topk(scores, min(int(k), self.n_items), dim=1)
        return values.numpy(), indices.numpy()


def item_embeddings(model) -> torch.Tensor | None:
    """The model's item output embeddings [n_items, d], None when it has none."""
    return model.item_embeddings() if isinstance(model, ItemEmbeddings) else None


class SimilarItems:
    """Cosine similarity between item embeddings: "similar products" (exact, or through the
    model's ANN index when it has one, e.g. a large p2v catalogue)."""

    def __init__(self, embeddings: torch.Tensor, blocked: torch.Tensor, ann=None) -> None:
        e = embeddings.detach().float()
        self.unit = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.blocked = blocked
        self.ann = ann

    def topk(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to ``item`` (never itself or a blocked item)."""
        if self.ann is not None:
            banned = {item, *self.blocked.tolist()}
            wide = min(int(k) + len(banned), len(self.unit))
            rows, sims = self.ann.search(self.unit[item].numpy()[None, :], wide)
            rows, sims = self._beyond_index(rows[0], sims[0], item, wide)
            keep = [j for j, r in enumerate(rows) if r >= 0 and r not in banned][: int(k)]
            return rows[keep], sims[keep]
        with torch.inference_mode():
            sims = self.unit @ self.unit[item]
            sims[item] = float("-inf")
            if len(self.blocked):
                sims.index_fill_(0, self.blocked, float("-inf"))
            values, indices = torch.topk(sims, min(int(k), len(sims)))
            keep = torch.isfinite(values)
            return indices[keep].numpy(), values[keep].numpy()

    def _beyond_index(self, rows: np.ndarray, sims: np.ndarray, item: int, wide: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        """ANN answers merged with an exact search over the rows the index does not hold
        (cold-start products served after the trained items), best first."""
        n = int(self.ann.meta["n"])
        if len(self.unit) <= n:
            return rows, sims
        with torch.inference_mode():
            extra = self.unit[n:] @ self.unit[item]
            top = torch.topk(extra, min(wide, len(extra)))
        rows = np.concatenate([rows, n + top.indices.numpy()])
        sims = np.concatenate([sims, top.values.numpy()])
        order = np.argsort(-sims, kind="stable")
        return rows[order], sims[order]
