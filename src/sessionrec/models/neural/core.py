"""CORE: Consistent Representation Encoder (Hou, Hu, Zhao & Wen, SIGIR 2022).

Section 3 of the paper ("CORE: Simple and Effective Session-based Recommendation within
Consistent Representation Space"):

* **Representation-consistent encoding** (§3.2, eq. 2–5): the session representation is a
  *weighted sum of the session's own item embeddings*, so it lies in the item space the
  decoder scores against (no non-linear encoder output): ``h_s = Σ_i α_i x_i``.

  - ``encoder = "ave"`` (CORE-ave, eq. 3): ``α_i = 1 / n``;
  - ``encoder = "trm"`` (CORE-trm, eq. 4–5): a causal Transformer over the item embeddings
    plus learned positions gives ``F = Trm([x_1 + p_1, …, x_n + p_n])`` and
    ``α = softmax(w · F + b)`` over the session's positions (padding gets no weight);
    ``layers`` × ``heads`` self-attention blocks of width ``embedding`` with a GELU
    feed-forward of width ``inner`` (``torch.nn.TransformerEncoderLayer``, post-norm as in
    the authors' RecBole code).

  Session dropout ``dropout_session`` is applied to the input item embeddings ``x_i``.
* **Robust distance measuring** (§3.3, eq. 6–8): (1) dropout ``dropout_item`` on the item
  table when scoring during training, (2) cosine similarity — ``h_s`` and every item vector
  are L2-normalised — and (3) a temperature ``τ``: ``ŷ_v = cos(h_s, x_v) / τ``, trained
  with softmax cross-entropy over all items (eq. 9; ``n_sample >= 0`` trains the same scores
  against sampled columns instead).

Defaults are the authors' (RecBole ``CORE.yaml``): embedding 64, 2 layers × 2 heads, inner
256, hidden and attention dropout 0.5, session and item dropout 0.2, τ = 0.07.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param


@dataclass(frozen=True)
class COREParams(NeuralParams):
    embedding: int = param(64, low=1)
    encoder: str = param("trm", choices=("trm", "ave"))
    layers: int = param(2, low=1)
    heads: int = param(2, low=1)
    inner: int = param(256, low=1)
    dropout_hidden: float = param(0.5, low=0.0, high=1.0, open_high=True)
    dropout_attention: float = param(0.5, low=0.0, high=1.0, open_high=True)
    dropout_session: float = param(0.2, low=0.0, high=1.0, open_high=True)
    dropout_item: float = param(0.2, low=0.0, high=1.0, open_high=True)
    temperature: float = param(0.07, low=1e-6)


class CosineItemOutput(ItemOutput):
    """The item table scored by ``cos(h, x_v) / τ``, item dropout while training (§3.3)."""

    def __init__(self, n_items: int, dim: int, temperature: float, dropout: float) -> None:
        super().__init__(n_items, dim, bias=False)
        self.temperature = float(temperature)
        self.drop = nn.Dropout(dropout)

    def _items(self, w: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.drop(w), dim=-1)

    def full(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=-1) @ self._items(self.weight).t() / self.temperature

    def columns(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=-1) @ self._items(self.table(items)).t() / self.temperature


class AttentionWeights(nn.Module):
    """CORE-trm's α (eq. 4–5): causal Transformer over items + positions, a linear score per
    position, softmax over the real positions."""

    def __init__(self, p: COREParams) -> None:
        super().__init__()
        d = p.embedding
        self.positions = nn.Embedding(p.max_len, d)
        self.norm = nn.LayerNorm(d, eps=1e-12)
        self.drop = nn.Dropout(p.dropout_hidden)
        layer = nn.TransformerEncoderLayer(d, p.heads, p.inner, p.dropout_hidden,
                                           activation="gelu", batch_first=True,
                                           layer_norm_eps=1e-12)
        layer.self_attn.dropout = p.dropout_attention
        self.trm = nn.TransformerEncoder(layer, p.layers, enable_nested_tensor=False)
        self.score = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        width = x.shape[1]
        pos = self.positions(torch.arange(width, device=x.device)).unsqueeze(0)
        causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=x.device), 1)
        f = self.trm(self.drop(self.norm(x + pos)), mask=causal, src_key_padding_mask=~mask)
        a = self.score(f).squeeze(2).masked_fill(~mask, float("-inf"))
        return torch.softmax(a, dim=1)                                # [B, L]


class COREEncoder(nn.Module):
    def __init__(self, p: COREParams, output: ItemOutput) -> None:
        super().__init__()
        self.items = output.table
        self.drop = nn.Dropout(p.dropout_session)
        self.alpha = AttentionWeights(p) if p.encoder == "trm" else None

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        mask = batch.mask
        x = self.drop(self.items(batch.items))                        # [B, L, d]
        if self.alpha is None:                                        # CORE-ave (eq. 3)
            alpha = mask.float() / batch.lengths.unsqueeze(1).float()
        else:
            alpha = self.alpha(x, mask)
        return (alpha.unsqueeze(2) * x).sum(1)                        # [B, d], item space


@register_model
class CORE(NeuralRecommender):
    """CORE-trm / CORE-ave (see the module docstring); parameters: :class:`COREParams`."""

    name = "core"
    Params = COREParams

    def output_dim(self) -> int:
        return self.params.embedding

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return COREEncoder(self.params, output)

    def build_output(self, n_items: int) -> ItemOutput:
        p = self.params
        return CosineItemOutput(n_items, p.embedding, p.temperature, p.dropout_item)
