"""SASRec: Self-Attentive Sequential Recommendation (Kang & McAuley, ICDM 2018).

Section III of the paper:

* **Embedding layer** (§III-A): the item table (shared with the prediction layer, §III-D
  "shared item embedding") scaled by ``√d`` as in the authors' code, plus a **learned
  positional embedding** ``P``. SASRec left-pads a fixed window so the latest item always
  has the last position; on our right-padded prefixes the same positions are indexed by
  recency, ``L − 1 − j`` for item ``j`` of a prefix of length ``L`` (the last item 0), which
  is the same function of the sequence.
* **Self-attention blocks** (§III-B/C): ``blocks`` layers of causal (no attention to later
  positions) scaled dot-product attention with ``heads`` heads and a point-wise two-layer ReLU
  feed-forward network, each sub-layer as ``x + Dropout(g(LayerNorm(x)))`` (pre-norm,
  ``torch.nn.TransformerEncoderLayer(norm_first=True)``), a final LayerNorm, dropout
  ``dropout`` on the embeddings and in the blocks.
* **Prediction layer** (§III-D): ``r_{i,t} = F_t · M_i``, the last position's output scored
  against every item vector by the shared output layer.

Training differs from the paper in one respect: the paper's binary cross-entropy with one
sampled negative per position is not among the shared objectives; SASRec here trains with the
shared output layer's loss (full softmax cross-entropy by default, or any sampled loss via
``n_sample``), on every prefix of every session — the same (prefix, next item) pairs the
paper's sequence-to-sequence training sums over. Defaults: d = 50, 2 blocks, 1 head,
dropout 0.2, window 50 (the authors' defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param


@dataclass(frozen=True)
class SASRecParams(NeuralParams):
    embedding: int = param(50, low=1)
    blocks: int = param(2, low=1)
    heads: int = param(1, low=1)
    dropout: float = param(0.2, low=0.0, high=1.0, open_high=True)


class SASRecEncoder(nn.Module):
    def __init__(self, p: SASRecParams, output: ItemOutput) -> None:
        super().__init__()
        d = p.embedding
        self.items = output.table
        self.scale = math.sqrt(d)
        self.positions = nn.Embedding(p.max_len, d)
        self.drop = nn.Dropout(p.dropout)
        layer = nn.TransformerEncoderLayer(d, p.heads, d, p.dropout, activation="relu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, p.blocks, norm=nn.LayerNorm(d),
                                            enable_nested_tensor=False)

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        width = batch.items.shape[1]
        mask = batch.mask                                              # [B, L]
        recency = (batch.lengths.unsqueeze(1) - 1 - torch.arange(width, device=mask.device)
                   ).clamp(min=0)                                      # last item: 0
        x = self.items(batch.items) * self.scale + self.positions(recency)
        x = self.drop(x) * mask.unsqueeze(2)
        causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=x.device), 1)
        f = self.blocks(x, mask=causal, src_key_padding_mask=~mask)   # [B, L, d]
        last = (batch.lengths - 1).view(-1, 1, 1).expand(-1, 1, f.shape[2])
        return f.gather(1, last).squeeze(1)                            # F at the last item


@register_model
class SASRec(NeuralRecommender):
    """SASRec (see the module docstring); parameters: :class:`SASRecParams`."""

    name = "sasrec"
    Params = SASRecParams

    def output_dim(self) -> int:
        return self.params.embedding

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return SASRecEncoder(self.params, output)
