"""The item output layer every neural model shares, and its training objective.

An encoder turns a batch into session representations ``h [B, d]``; :class:`ItemOutput`
scores them against the item table:

* **full softmax** (``n_sample = -1``): ``logits = h · Wᵀ (+ b)`` over all ``n_items`` and
  cross-entropy with the true next item — what NARM, STAMP and SR-GNN train with;
* **sampled** (``n_sample >= 0``): the columns are the batch's own targets plus ``n_sample``
  shared negatives drawn ∝ count^``sample_alpha``, giving the ``[B, B + S]`` layout of
  :mod:`sessionrec.training.losses` (XE with optional log-Q, BPR-max, TOP1-max, BPR, TOP1),
  GRU4Rec's way of training over large catalogues.

The item table has one extra row, the padding index ``n_items``, so encoders can use it as
their input embedding (tied input/output embeddings, as NARM's bilinear decoder and STAMP's
trilinear score do); the padding row is never scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.training.losses import get_loss


class ItemOutput(nn.Module):
    """Item table ``[n_items + 1, dim]`` (last row: padding) and an optional per-item bias."""

    def __init__(self, n_items: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.n_items = int(n_items)
        self.table = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        nn.init.normal_(self.table.weight, std=1.0 / math.sqrt(dim))
        with torch.no_grad():
            self.table.weight[n_items].zero_()
        self.bias = nn.Parameter(torch.zeros(n_items)) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """float [n_items, dim]: the scored rows (padding excluded)."""
        return self.table.weight[: self.n_items]

    def full(self, h: torch.Tensor) -> torch.Tensor:
        """float [B, n_items]: every item's score for each representation ``h [B, dim]``."""
        return F.linear(h, self.weight, self.bias)

    def columns(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """float [B, C]: scores of the items ``items [C]`` (shared by all rows)."""
        w = self.table(items)
        scores = h @ w.t()
        return scores if self.bias is None else scores + self.bias[items]


@dataclass(frozen=True)
class Objective:
    """How the output layer is trained (see the module docstring)."""

    loss: str = "cross-entropy"
    n_sample: int = -1
    sample_alpha: float = 0.75
    logq: float = 0.0
    bpreg: float = 1.0
    elu_param: float = 0.0


class OutputLoss:
    """Mean loss of a batch's representations against its targets."""

    def __init__(self, objective: Objective, counts: np.ndarray, seed: int = 0) -> None:
        self.objective = objective
        self.sampler = None
        self.log_counts = torch.from_numpy(np.log(np.maximum(counts, 1.0))).float()
        if objective.n_sample >= 0:
            self.sampler = NegativeSampler(counts, objective.n_sample, objective.sample_alpha,
                                           seed=seed)
            self.loss_fn = get_loss(objective.loss, objective.bpreg, objective.elu_param,
                                    objective.logq)

    def reseed(self, seed: int) -> None:
        if self.sampler is not None:
            self.sampler.reseed(seed)

    def __call__(self, output: ItemOutput, h: torch.Tensor, targets: torch.Tensor,
                 ) -> torch.Tensor:
        """Mean loss over the ``B`` rows of ``h [B, d]`` with true next items ``targets [B]``."""
        if self.sampler is None:
            return F.cross_entropy(output.full(h).float(), targets)
        samples = self.sampler.draw().to(h.device)
        cols = torch.cat([targets, samples])
        scores = output.columns(h, cols).float()
        log_q = None
        if self.objective.loss == "cross-entropy" and self.objective.logq > 0:
            lq = self.log_counts.to(h.device)[cols]
            m = len(targets)
            log_q = torch.cat([lq[:m], lq[m:] * self.objective.sample_alpha])
        return self.loss_fn(scores, log_q) / len(targets)
