"""Any model as a recurrent step: the state is the session's last N items.

Serving keeps a fixed-size float32 state per session and advances it click by click
(:class:`~sessionrec.models.capabilities.RecurrentStep`). A model without a recurrent state —
V-SKNN, STAN, the rules, NARM, STAMP — is served through :class:`PrefixStep`: its state holds
the last ``n`` known item indices (oldest first, ``-1`` in the empty slots on the left), a
click shifts the window, and the scores are the model's own ``score`` of that prefix. So
every model is served by the same API, stores and fallbacks.

Item indices are stored as float32 values, exact up to 2**24 (16.7M items): a larger
catalogue is refused rather than rounded.
"""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.errors import SessionRecError
from sessionrec.models.base import SessionRecommender

EXACT_FLOAT32 = 2**24


class PrefixStep:
    """``model`` behind the recurrent-step interface with a window of ``n`` items."""

    def __init__(self, model: SessionRecommender, n: int) -> None:
        if n < 1:
            raise SessionRecError(f"a prefix step needs a window of at least 1 item, got {n}")
        n_items = int(model.n_items_)
        if n_items >= EXACT_FLOAT32:
            raise SessionRecError(
                f"{model.name} has {n_items:,} items: a prefix state stores item indices as "
                f"float32, exact only below {EXACT_FLOAT32:,}")
        self.model = model
        self.name = model.name
        self.n_items_ = n_items
        self.state_size = int(n)

    def initial_state(self, n: int) -> torch.Tensor:
        """float32 [n, N]: empty windows (every slot -1)."""
        return torch.full((n, self.state_size), -1.0)

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Windows after one click each; unknown items (outside the catalogue, -1) are not
        added, as ``score`` drops them from prefixes."""
        items = torch.as_tensor(items, dtype=torch.int64).reshape(-1)
        known = (items >= 0) & (items < self.n_items_)
        shifted = torch.cat([state[:, 1:], items.float().unsqueeze(1)], dim=1)
        return torch.where(known.unsqueeze(1), shifted, state)

    def prefixes(self, state: torch.Tensor) -> list[np.ndarray]:
        """The item indices held in each window, oldest first."""
        s = state.numpy().astype(np.int64)
        return [row[row >= 0] for row in s]

    def scores_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """float32 [n, n_items]: the model's scores of each window's prefix (an empty window
        gets the training popularity, as ``score`` gives an empty prefix)."""
        return self.model.score(self.prefixes(state))
