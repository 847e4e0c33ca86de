"""What a model can do, declared as ``typing.Protocol`` s instead of probed with ``hasattr``.

Every model is a :class:`~sessionrec.models.base.SessionRecommender`, so every model can score
a session prefix (``score``) — that is all serving needs for a *prefix step* (the last N items
of the session kept in the state record). Models with more declare it by implementing one of
these protocols; callers test ``isinstance(model, Protocol)`` and the shared contract suite
(tests/models/contract.py) checks that a model claiming a capability behaves as it says.

* :class:`RecurrentStep` — a fixed-size session state advanced one click at a time
  (GRU4Rec, HGRU4Rec): serving stores the state vector, not the items.
* :class:`UserStateful` — a user-level state carried across a user's sessions (HGRU4Rec).
* :class:`LearnedUserStates` — states learned for the users of the training data.
* :class:`PrefixWindow` — looks only at the session's last ``prefix_len`` items.
* :class:`UserHistory` — can roll its users' states on through more sessions without training.
* :class:`TakesItemVectors` — accepts pre-trained item vectors (e.g. Meta-Prod2Vec) as input.
* :class:`ItemEmbeddings` — has one output vector per item ("similar products").
* :class:`TrainsInContext` — trains for epochs and takes a
  :class:`~sessionrec.training.context.FitContext` (checkpoints, resume, device, progress).
* :class:`TakesItemTable` — reads the prepared item metadata (``items.parquet``) before
  fitting (Meta-Prod2Vec's side-information tokens).
* :class:`ApproximateTopK` — answers top-k from an approximate nearest-neighbour index kept
  beside its weights instead of scoring every item (prod2vec).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from sessionrec.data.sessions import Sessions


@runtime_checkable
class RecurrentStep(Protocol):
    """A session state of ``state_size`` floats, advanced one click at a time."""

    @property
    def state_size(self) -> int: ...

    def initial_state(self, n: int) -> torch.Tensor:
        """float32 [n, state_size]: the states of ``n`` new sessions."""

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """States after one click each; an unknown item (e.g. -1) leaves a state unchanged."""

    def scores_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """float32 [n, n_items] scores of every item in each state."""


@runtime_checkable
class UserStateful(Protocol):
    """A user state carried from one session of a user to the next."""

    @property
    def user_state_size(self) -> int: ...

    def session_start_state(self, user_state: torch.Tensor) -> torch.Tensor:
        """float32 [n, state_size]: the first session state of users in ``user_state``."""

    def advance_user(self, user_state: torch.Tensor, session_state: torch.Tensor) -> torch.Tensor:
        """float32 [n, user_state_size]: user states after sessions ending in ``session_state``."""


@runtime_checkable
class LearnedUserStates(Protocol):
    """States the model learned for the users of its training data."""

    def user_state_of(self, users: np.ndarray | list[int] | None, n: int = 0) -> torch.Tensor:
        """float32 [n, user_state_size] for user indices (zeros for unknown users)."""


@runtime_checkable
class PrefixWindow(Protocol):
    """Looks only at the last ``prefix_len`` items of a session (served with that window)."""

    @property
    def prefix_len(self) -> int: ...


@runtime_checkable
class UserHistory(Protocol):
    """Rolls its stored user states on through more sessions, without training."""

    def extend_user_history(self, sessions: Sessions) -> object: ...


@runtime_checkable
class TakesItemVectors(Protocol):
    """Takes pre-trained item vectors [n_items, d] as its input embedding."""

    def set_pretrained_items(self, vectors: torch.Tensor | np.ndarray,
                             freeze: bool = True) -> object: ...


@runtime_checkable
class ItemEmbeddings(Protocol):
    """One output vector per item."""

    def item_embeddings(self) -> torch.Tensor:
        """float32 [n_items, d]."""


@runtime_checkable
class TrainsInContext(Protocol):
    """Trains for epochs; ``fit(train, valid, context=FitContext(...))`` uses the context."""

    trains_in_context: bool


@runtime_checkable
class TakesItemTable(Protocol):
    """Reads the prepared item metadata (one row per item index) before ``fit``."""

    def set_item_table(self, items: pl.DataFrame) -> None: ...


@runtime_checkable
class ApproximateTopK(Protocol):
    """Top-k items from a nearest-neighbour index instead of a full score row."""

    def use_index(self, beside: Path, *, min_items: int | None = None) -> object:
        """Load (or build and save) the index kept beside the weights file ``beside``."""

    def topk_from_state(self, states: torch.Tensor, k: int, exclude: list[np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [n, k'], items int64 [n, k']) never naming ``exclude[row]``."""
