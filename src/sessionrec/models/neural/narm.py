"""NARM: Neural Attentive session-based Recommendation (Li et al., CIKM 2017).

Section 3 of the paper, read top to bottom:

* item embeddings ``x_1..x_t`` (the shared item table, so the decoder's item vectors are the
  input ones, as the paper's bilinear decoder uses) with dropout (0.25 in §4.3);
* a GRU over the session gives hidden states ``h_1..h_t``;
* **global encoder** (§3.2): ``c_g = h_t``, the user's sequential behaviour;
* **local encoder** (§3.3, eq. 5–6): attention of the last state over all states,
  ``α_tj = vᵀ σ(A₁ h_t + A₂ h_j)``, ``c_l = Σ_j α_tj h_j`` — the main purpose in this session;
* ``c_t = [c_g; c_l]`` with dropout (0.5 in §4.3);
* **bilinear decoder** (§3.4, eq. 9): ``S_i = embᵢᵀ B c_t`` — here ``B c_t`` is the session
  representation handed to the shared output layer, which takes the product with every item
  vector (full softmax with cross-entropy, eq. 10, by default).

Padding positions (right-padded prefixes) are masked out of the attention; ``h_t`` is the
state at each row's last real item.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param


@dataclass(frozen=True)
class NARMParams(NeuralParams):
    embedding: int = param(50, low=1)
    hidden: int = param(100, low=1)
    layers: int = param(1, low=1)
    dropout_embed: float = param(0.25, low=0.0, high=1.0, open_high=True)
    dropout_context: float = param(0.5, low=0.0, high=1.0, open_high=True)


class NARMEncoder(nn.Module):
    def __init__(self, p: NARMParams, output: ItemOutput) -> None:
        super().__init__()
        self.items = output.table  # [n_items + 1, embedding], padding row last
        self.drop_embed = nn.Dropout(p.dropout_embed)
        self.gru = nn.GRU(p.embedding, p.hidden, p.layers, batch_first=True)
        self.a1 = nn.Linear(p.hidden, p.hidden, bias=False)
        self.a2 = nn.Linear(p.hidden, p.hidden, bias=False)
        self.v = nn.Linear(p.hidden, 1, bias=False)
        self.drop_context = nn.Dropout(p.dropout_context)
        self.bilinear = nn.Linear(2 * p.hidden, p.embedding, bias=False)  # B of eq. 9

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        x = self.drop_embed(self.items(batch.items))                 # [B, L, e]
        # Packed: the GRU runs over real items only (most prefixes are far shorter than L).
        packed = pack_padded_sequence(x, batch.lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                   total_length=x.shape[1])          # [B, L, hid], pad = 0
        last = (batch.lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2])
        c_g = h.gather(1, last).squeeze(1)                           # [B, hid]
        e = self.v(torch.sigmoid(self.a1(c_g).unsqueeze(1) + self.a2(h)))  # [B, L, 1]
        alpha = e * batch.mask.unsqueeze(2)                          # padding gets no weight
        c_l = (alpha * h).sum(1)                                     # [B, hid]
        c_t = self.drop_context(torch.cat([c_g, c_l], dim=1))        # [B, 2 hid]
        return self.bilinear(c_t)                                    # [B, e]


@register_model
class NARM(NeuralRecommender):
    """NARM (see the module docstring); parameters: :class:`NARMParams`."""

    name = "narm"
    Params = NARMParams

    def output_dim(self) -> int:
        return self.params.embedding

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return NARMEncoder(self.params, output)
