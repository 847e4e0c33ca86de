"""GRU4Rec's architecture trained on padded prefixes, with Tan et al.'s improvements.

Tan, Xu & Liu, "Improved Recurrent Neural Networks for Session-based Recommendations"
(DLRS 2016) keep GRU4Rec's network (item embedding → one GRU layer → output over all items)
but train it sequence-to-one on padded prefixes, which is the neural core's
:class:`~sessionrec.batching.prefixes.PrefixSource`. Their options, each a parameter here:

* §3.1 **sequence (prefix) augmentation** — ``augment = true`` (default): every prefix of a
  session → its next item; ``augment = false``: one case per session, all items but the
  last → the last (:class:`~sessionrec.batching.phases.LastTargetSource`);
* §3.1 **dropping whole input items** — ``item_dropout = p``: while training, each input
  item's whole embedding vector is zeroed with probability ``p`` (no rescaling: an item is
  either seen or not), except each row's most recent item, which is always kept;
* §3.3 **pre-training, then fine-tuning on recent data** — ``finetune_fraction = f`` and
  ``finetune_epochs = k``: the first ``n_epochs - k`` epochs train on all sessions, the last
  ``k`` on the most recent fraction ``f`` of them (by first timestamp; ``f = 0``: off);
* §3.4 **output embeddings** — ``prediction = "embedding"``: the network predicts the target
  item's embedding (the input item table, tied, taken as a fixed target per step: no
  gradient through the target) with the cosine loss ``1 - cos(ŷ, e_target)``, and items are
  scored by cosine similarity — one ``d``-wide output instead of a softmax over the catalogue.
  ``prediction = "softmax"`` (default) is the full softmax (or sampled, ``n_sample >= 0``).

§3.2's privileged-information distillation (a teacher reading the session's future) is not
implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from sessionrec.batching.phases import LastTargetSource, PhasedSource, recent_sessions
from sessionrec.batching.prefixes import PrefixBatch, PrefixSource
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput, OutputLoss
from sessionrec.models.neural.params import param

PREDICTIONS = ("softmax", "embedding")


@dataclass(frozen=True)
class GRUPrefixParams(NeuralParams):
    embedding: int = param(100, low=1)
    hidden: int = param(100, low=1)
    layers: int = param(1, low=1)
    dropout_hidden: float = param(0.0, low=0.0, high=1.0, open_high=True)
    augment: bool = True
    item_dropout: float = param(0.0, low=0.0, high=1.0, open_high=True)
    finetune_fraction: float = param(0.0, low=0.0, high=1.0)
    finetune_epochs: int = param(0, low=0)
    prediction: str = param("softmax", choices=PREDICTIONS)


def item_keep_mask(lengths: torch.Tensor, width: int, p: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """bool [B, width]: which input items a training step sees (item dropout).

    Position ``j`` of row ``b`` is dropped when ``u[b, j] < p`` for ``u ~ U[0, 1)`` drawn with
    ``generator``; the row's most recent item (``lengths[b] - 1``) is always kept.
    """
    u = torch.rand((len(lengths), width), generator=generator)
    last = torch.arange(width).unsqueeze(0) == (lengths.cpu() - 1).unsqueeze(1)
    return (u >= p) | last


class GRUPrefixEncoder(nn.Module):
    def __init__(self, p: GRUPrefixParams, output: ItemOutput, n_items: int) -> None:
        super().__init__()
        self.embedded_output = p.prediction == "embedding"
        # Output embeddings need the input table as their targets (tied); the softmax model
        # has its own input embedding, as GRU4Rec does.
        self.items = output.table if self.embedded_output else nn.Embedding(
            n_items + 1, p.embedding, padding_idx=n_items)
        self.item_dropout = p.item_dropout
        self.gru = nn.GRU(p.embedding, p.hidden, p.layers, batch_first=True,
                          dropout=p.dropout_hidden if p.layers > 1 else 0.0)
        self.drop = nn.Dropout(p.dropout_hidden)
        self.project = nn.Linear(p.hidden, p.embedding) if self.embedded_output else None

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        x = self.items(batch.items)                                   # [B, L, e]
        if self.training and self.item_dropout > 0:
            keep = item_keep_mask(batch.lengths, x.shape[1], self.item_dropout)
            x = x * keep.to(x.device).unsqueeze(2).to(x.dtype)
        packed = pack_padded_sequence(x, batch.lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, h_n = self.gru(packed)                                     # [layers, B, hid]
        h = self.drop(h_n[-1])
        return self.project(h) if self.project is not None else h


class CosineItemOutput(ItemOutput):
    """Items scored by the cosine similarity of their vector with ``h`` (Tan §3.4)."""

    def full(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(h, dim=-1), F.normalize(self.weight, dim=-1))

    def columns(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=-1) @ F.normalize(self.table(items), dim=-1).t()


class EmbeddingLoss(OutputLoss):
    """Mean ``1 - cos(h, e_target)`` with the target vectors taken as constants."""

    def __init__(self) -> None:  # no sampler, no counts
        self.sampler = None

    def __call__(self, output: ItemOutput, h: torch.Tensor, targets: torch.Tensor,
                 ) -> torch.Tensor:
        target = output.table.weight[targets].detach()
        return (1.0 - F.cosine_similarity(h.float(), target.float(), dim=-1)).mean()


@register_model
class GRUPrefix(NeuralRecommender):
    """GRU4Rec's network on padded prefixes with Tan et al.'s options (module docstring)."""

    name = "gru4rec-tan"
    Params = GRUPrefixParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        p = self.params
        if p.finetune_epochs >= p.n_epochs and p.finetune_fraction > 0:
            raise ConfigError(f"{self.name}: finetune_epochs = {p.finetune_epochs} must be "
                              f"fewer than n_epochs = {p.n_epochs} (the first epochs pre-train "
                              "on all sessions)")
        if (p.finetune_fraction > 0) != (p.finetune_epochs > 0):
            raise ConfigError(f"{self.name}: set both finetune_fraction (> 0) and "
                              f"finetune_epochs (> 0) to fine-tune on recent sessions, or "
                              f"neither (got {p.finetune_fraction} and {p.finetune_epochs})")
        if p.prediction == "embedding" and p.n_sample >= 0:
            raise ConfigError(f"{self.name}: prediction = 'embedding' trains with the cosine "
                              "loss on the target's vector; n_sample must stay -1")

    def output_dim(self) -> int:
        p = self.params
        return p.embedding if p.prediction == "embedding" else p.hidden

    def build_output(self, n_items: int) -> ItemOutput:
        if self.params.prediction == "embedding":
            return CosineItemOutput(n_items, self.output_dim())
        return super().build_output(n_items)

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return GRUPrefixEncoder(self.params, output, n_items)

    def make_objective(self, counts: np.ndarray) -> OutputLoss:
        if self.params.prediction == "embedding":
            return EmbeddingLoss()
        return super().make_objective(counts)

    def _source(self, sessions: Sessions, rank: int, world_size: int) -> PrefixSource:
        p = self.params
        kind = PrefixSource if p.augment else LastTargetSource
        return kind(sessions, self._rank_batch(world_size), p.max_len, p.seed, rank,
                    world_size)

    def batch_source(self, train: Sessions, rank: int, world_size: int):
        p = self.params
        full = self._source(train, rank, world_size)
        if p.finetune_fraction <= 0:
            return full
        recent = self._source(train.subset(recent_sessions(train, p.finetune_fraction)),
                              rank, world_size)
        return PhasedSource(full, recent, p.n_epochs - p.finetune_epochs)
