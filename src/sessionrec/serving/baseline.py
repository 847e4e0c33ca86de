"""Baselines as served variants: "often bought together" and "popular" behind the model step.

An experiment's control is usually the shop's existing engine, "often bought together" (the
co-occurrence baseline, seed 000). To serve it exactly like the recurrent models — same
session records, seen-item filter, blocked items, fallbacks — it is wrapped as a recurrent
model whose state is one float, the session's last known item (-1: none):

    advance(s, i)          = i if i is a known item, else s
    scores_from_state(s)   = C[s, :] + r        (C: co-occurrence counts; 0 for s = -1)
    r_j = 1 - (rank_j + 1) / (n + 1)            (rank 0 = most popular, ties by index)

Counts are integers and ``0 < r < 1``, so the co-occurring items rank first by count (ties by
popularity), then the rest by popularity: the ranking of :class:`~.fallback.Fallback`, except
that it breaks ties between equal counts by index. Unlike the fallback it may recommend the
clicked item itself when ``exclude_seen`` is off.
``popular`` scores ``r`` alone. Both are loaded from a cooc run (its matrix, training
popularity and vocabulary).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.errors import SessionRecError
from sessionrec.modeldir import find_vocab, model_directory
from sessionrec.serving.bundle import Bundle, file_key, load_item_to_item
from sessionrec.serving.fallback import Fallback
from sessionrec.serving.step import ModelStep

MAX_ITEMS = 2**24  # item indices are kept in a float32 state: exact up to 2^24


class ItemToItemState:
    """A co-occurrence (or popularity) ranking with the recurrent model interface."""

    state_size = 1

    def __init__(self, name: str, popularity: torch.Tensor, matrix: sp.csr_matrix | None) -> None:
        self.name = name
        self.popularity_ = popularity
        self.n_items_ = len(popularity)
        if self.n_items_ >= MAX_ITEMS:
            raise SessionRecError(f"{name}: {self.n_items_:,} items are too many to serve as a "
                                  f"variant (at most {MAX_ITEMS - 1:,})")
        order = np.argsort(-popularity.numpy(), kind="stable")
        rank = np.empty(self.n_items_, dtype=np.float64)
        rank[order] = np.arange(self.n_items_)
        self.rank_score = torch.from_numpy(1.0 - (rank + 1.0) / (self.n_items_ + 1.0))
        self.matrix = matrix

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.full((n, 1), -1.0)

    def advance(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        known = (items >= 0) & (items < self.n_items_)
        return torch.where(known.unsqueeze(1), items.unsqueeze(1).to(states.dtype), states)

    def scores_from_state(self, states: torch.Tensor) -> torch.Tensor:
        """[n, n_items] float64 scores (see the module docstring)."""
        scores = self.rank_score.unsqueeze(0).repeat(len(states), 1)
        if self.matrix is None:
            return scores
        last = states[:, 0].to(torch.int64).numpy()
        rows = np.flatnonzero(last >= 0)
        if len(rows):
            counts = self.matrix[last[rows]].toarray()
            scores[torch.from_numpy(rows)] += torch.from_numpy(counts.astype(np.float64))
        return scores


def load_baseline_bundle(kind: str, cooc_run: str | Path, vocab: str | Path | None = None,
                         blocked: list | None = None) -> Bundle:
    """A served baseline (``kind``: ``"cooc"`` or ``"pop"``) from a cooc run directory."""
    if kind not in ("cooc", "pop"):
        raise SessionRecError(f"unknown baseline {kind!r}; use cooc or pop")
    model_dir, run_dir = model_directory(cooc_run)
    found = find_vocab(model_dir, run_dir, vocab)
    fb, matrix = load_item_to_item(model_dir, found, f"baseline {kind}")
    matrix = matrix.astype(np.float64)
    model = ItemToItemState(kind, fb.popularity_.double(), matrix if kind == "cooc" else None)
    blocked_idx = np.asarray([i for i in (found.index_of(b) for b in blocked or []) if i >= 0],
                             dtype=np.int64)
    step = ModelStep(model, blocked_idx)
    fallback = Fallback(fb.popularity_.numpy(), matrix if kind == "cooc" else None, blocked_idx,
                        name=kind)
    key = hashlib.sha256(kind.encode() + file_key(model_dir, found)).digest()[:8]
    return Bundle(model, step, found, fallback, None, model_dir, key,  # type: ignore[arg-type]
                  found.products(blocked_idx))
