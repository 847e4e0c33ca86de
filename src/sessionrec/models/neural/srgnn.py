"""SR-GNN: Session-based Recommendation with Graph Neural Networks (Wu et al., AAAI 2019).

Section 3 of the paper, read top to bottom:

* **session graphs** (§3.2): each prefix is a directed graph of its unique items with the
  connection matrix ``A_s = [A_in, A_out]`` (edge occurrences normalised by in-/out-degree),
  built per batch by :mod:`sessionrec.batching.graphs`;
* **node vectors** (§3.2): the shared item table (tied with the output layer, as the paper
  scores ``ẑ_i = s_hᵀ v_i`` with the same item embeddings, §3.4);
* **gated GNN** (§3.3, eq. 1–5), ``steps`` times: ``a = [A_in (V H_in) + b_in;
  A_out (V H_out) + b_out]`` and a GRU update of every node from ``a``
  (``z = σ(W_z a + U_z v)``, ``r = σ(W_r a + U_r v)``, ``ṽ = tanh(W_o a + U_o (r ⊙ v))``,
  ``v ← (1 − z) ⊙ ṽ + z ⊙ v``, :class:`torch.nn.GRUCell`'s form, as the reference code);
* **session embedding** (§3.4, eq. 6–7): local ``s_l = v_n`` (the last click's node),
  global ``s_g = Σ_i α_i v_i`` with ``α_i = qᵀ σ(W₁ v_n + W₂ v_i + c)`` over the prefix's
  positions, hybrid ``s_h = W₃ [s_l; s_g]`` (``hybrid = false``: ``s_h = s_g``, the paper's
  SR-GNN-NGC-like ablation without the local part);
* **scores** (§3.5, eq. 8–9): ``ẑ = softmax(s_hᵀ v_i)`` over all items with cross-entropy —
  the shared output layer's full softmax.

Defaults are the paper's (§4.1 "Parameter Setup"): hidden size 100, Adam with learning rate
0.001 decayed by 0.1 every 3 epochs, L2 penalty 1e-5, batch size 100, parameters initialised
uniformly in ``±1/√d``, one propagation step (the reference code's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sessionrec.batching.graphs import GraphBatch, GraphSource, graph_batch
from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.data.sessions import Sessions
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param


@dataclass(frozen=True)
class SRGNNParams(NeuralParams):
    hidden: int = param(100, low=1)
    steps: int = param(1, low=1)
    hybrid: bool = True
    batch_size: int = param(100, low=1)
    learning_rate: float = param(1e-3, low=0.0)
    weight_decay: float = param(1e-5, low=0.0)
    lr_decay: float = param(0.1, low=0.0, high=1.0)
    lr_decay_every: int = param(3, low=1)


def uniform_init(module: nn.Module, output: ItemOutput, dim: int) -> None:
    """Every weight (and the item table) uniform in ``±1/√dim``, the padding row zero."""
    bound = 1.0 / math.sqrt(dim)
    with torch.no_grad():
        for w in [*module.parameters(), output.table.weight]:
            w.uniform_(-bound, bound)
        output.table.weight[output.n_items].zero_()


class GatedGraphLayer(nn.Module):
    """One propagation step of eq. 1–5 over the nodes of a batch of session graphs."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.edge_in = nn.Linear(hidden, hidden)                  # H_in, b_in
        self.edge_out = nn.Linear(hidden, hidden)                 # H_out, b_out
        self.gru = nn.GRUCell(2 * hidden, hidden)

    def forward(self, g: GraphBatch, v: torch.Tensor) -> torch.Tensor:
        x_in, x_out = self.edge_in.weight, self.edge_out.weight   # bias added per node below
        src, dst = g.edge_src, g.edge_dst
        a_in = torch.zeros_like(v).index_add_(                    # Σ_u A_in[v, u] H_in x_u
            0, dst, g.edge_in.unsqueeze(1) * (v[src] @ x_in.t())) + self.edge_in.bias
        a_out = torch.zeros_like(v).index_add_(                   # Σ_w A_out[v, w] H_out x_w
            0, src, g.edge_out.unsqueeze(1) * (v[dst] @ x_out.t())) + self.edge_out.bias
        return self.gru(torch.cat([a_in, a_out], dim=1), v)       # [M, d]


class SRGNNEncoder(nn.Module):
    def __init__(self, p: SRGNNParams, output: ItemOutput) -> None:
        super().__init__()
        self.items = output.table                                 # [n_items + 1, d]
        self.steps = p.steps
        self.gnn = GatedGraphLayer(p.hidden)
        self.w1 = nn.Linear(p.hidden, p.hidden)                   # W₁ (its bias is c)
        self.w2 = nn.Linear(p.hidden, p.hidden, bias=False)       # W₂
        self.q = nn.Linear(p.hidden, 1, bias=False)               # q
        # W₃ (absent without the hybrid readout: DDP refuses parameters that get no gradient)
        self.w3 = nn.Linear(2 * p.hidden, p.hidden, bias=False) if p.hybrid else None
        uniform_init(self, output, p.hidden)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        v = self.items(g.nodes)                                   # [M, d] all nodes
        for _ in range(self.steps):
            v = self.gnn(g, v)
        seq = v[g.alias]                                          # [P, d] per click
        s_l = v[g.last]                                           # [B, d]
        alpha = self.q(torch.sigmoid(self.w1(s_l)[g.pos_graph] + self.w2(seq)))  # [P, 1]
        s_g = torch.zeros_like(s_l).index_add_(0, g.pos_graph, alpha * seq)  # [B, d]
        if self.w3 is None:
            return s_g
        return self.w3(torch.cat([s_l, s_g], dim=1))              # s_h [B, d]


@register_model
class SRGNN(NeuralRecommender):
    """SR-GNN (see the module docstring); parameters: :class:`SRGNNParams`."""

    name = "srgnn"
    Params = SRGNNParams

    def output_dim(self) -> int:
        return self.params.hidden

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return SRGNNEncoder(self.params, output)

    def batch_source(self, train: Sessions, rank: int, world_size: int) -> GraphSource:
        return GraphSource(train, self._rank_batch(world_size), self.params.max_len,
                           self.params.seed, rank, world_size)

    def collate(self, batch: PrefixBatch) -> GraphBatch:
        return graph_batch(batch)
