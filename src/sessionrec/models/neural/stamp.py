"""STAMP and STMP: Short-Term Attention/Memory Priority (Liu et al., KDD 2018).

Section 3 of the paper:

* item embeddings ``x_1..x_t`` (the shared item table; the trilinear score below takes the
  product with the same item vectors);
* the session's **general interest** ``m_s = (1/t) Σ x_i`` (eq. 2) and its **current
  interest**, the last click ``m_t = x_t``;
* **STAMP** (§3.3, eq. 7–8): attention ``α_i = w₀ᵀ σ(W₁ x_i + W₂ x_t + W₃ m_s + b_a)`` and
  ``m_a = Σ α_i x_i``; **STMP** (§3.2, ``attention = false``) uses ``m_a = m_s``;
* two MLP cells ``h_s = tanh(W_s m_a + b_s)``, ``h_t = tanh(W_t m_t + b_t)`` (eq. 3–4);
* the **trilinear** score ``ẑ_i = ⟨h_s, h_t, x_i⟩ = (h_s ⊙ h_t) · x_i`` (eq. 5): ``h_s ⊙ h_t``
  is the session representation the shared output layer scores against every item, trained
  with softmax cross-entropy (eq. 6–10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param


@dataclass(frozen=True)
class STAMPParams(NeuralParams):
    embedding: int = param(100, low=1)
    attention: bool = True  # False: STMP
    dropout_embed: float = param(0.0, low=0.0, high=1.0, open_high=True)


class STAMPEncoder(nn.Module):
    def __init__(self, p: STAMPParams, output: ItemOutput) -> None:
        super().__init__()
        d = p.embedding
        self.items = output.table
        self.attention = p.attention
        self.drop = nn.Dropout(p.dropout_embed)
        self.w1 = nn.Linear(d, d, bias=False)
        self.w2 = nn.Linear(d, d, bias=False)
        self.w3 = nn.Linear(d, d, bias=True)  # its bias is b_a
        self.w0 = nn.Linear(d, 1, bias=False)
        self.mlp_s = nn.Linear(d, d)
        self.mlp_t = nn.Linear(d, d)
        for lin in (self.w1, self.w2, self.w3, self.w0, self.mlp_s, self.mlp_t):
            nn.init.normal_(lin.weight, std=0.05)  # §4.3: N(0, 0.05²)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        x = self.drop(self.items(batch.items))                       # [B, L, d] (pad row 0)
        mask = batch.mask.unsqueeze(2).float()                       # [B, L, 1]
        m_s = (x * mask).sum(1) / batch.lengths.unsqueeze(1).float()  # [B, d]
        x_t = x.gather(1, (batch.lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
                       ).squeeze(1)                                  # [B, d]
        if self.attention:
            a = self.w0(torch.sigmoid(self.w1(x) + (self.w2(x_t) + self.w3(m_s)).unsqueeze(1)))
            m_a = (a * mask * x).sum(1)                              # [B, d]
        else:
            m_a = m_s
        h_s = torch.tanh(self.mlp_s(m_a))
        h_t = torch.tanh(self.mlp_t(x_t))
        return h_s * h_t                                             # [B, d]


@register_model
class STAMP(NeuralRecommender):
    """STAMP (``attention = true``) or STMP; parameters: :class:`STAMPParams`."""

    name = "stamp"
    Params = STAMPParams

    def output_dim(self) -> int:
        return self.params.embedding

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return STAMPEncoder(self.params, output)
