"""GCE-GNN: Global Context Enhanced Graph Neural Networks (Wang et al., SIGIR 2020).

Sections 3–4 of the paper, read top to bottom:

* **global graph** (§3.2): items within ``epsilon`` positions of each other in any
  *training* session are neighbours, weighted by co-occurrence; each item keeps its
  ``neighbours`` (12) heaviest — built once before training by
  :func:`~sessionrec.batching.item_graph.item_transition_graph` and kept as buffers (saved
  with the model);
* **session graphs** (§3.1): each prefix's directed item graph
  (:mod:`sessionrec.batching.graphs`, one block-diagonal graph per batch);
* **global-level item representation** (§4.2.1, eq. 1–4), ``hops`` times: session-aware
  attention over an item's global neighbours ``π(v_i, v_j) = qᵀ LeakyReLU(W [s ⊙ h_vj; w_ij])``
  with ``s`` the mean item vector of the prefix and ``w_ij`` the edge weight, softmax over
  the neighbours, ``h^g_v = ReLU(W₁ [h_v; Σ π h_vj])`` (dropout ``dropout_gcn`` before W₁);
* **session-level item representation** (§4.2.2, eq. 5–7): attention over the node's
  session-graph neighbours and itself, ``e_ij = LeakyReLU(a_r_ijᵀ (h_vi ⊙ h_vj))`` with one
  vector ``a_r`` per relation (self, out, in, in-out), softmax over ``j``,
  ``h^s_v = Σ α_ij h_vj``;
* **combination** (§4.3): ``h'_v = dropout(h^g_v) + dropout(h^s_v)``;
* **position-aware readout** (§4.4, eq. 10–12): reversed position embeddings ``p_{l−i+1}``,
  ``z_i = tanh(W₃ [h'_vi; p_{l−i+1}])``, ``s' = mean_i h'_vi``,
  ``β_i = qᵀ σ(W₄ z_i + W₅ s' + c)``, ``S = Σ β_i h'_vi``;
* **scores** (§4.5, eq. 13): ``softmax(Sᵀ h_v)`` with the initial item vectors — the
  shared (tied) item table of the output layer.

Defaults are the paper's (§5.1.3): dimension 100, batch 100, Adam 1e-3 decayed by 0.1 every
3 epochs, L2 1e-5, 12 neighbours, ε = 3 (the reference code's window), LeakyReLU slope 0.2,
dropout 0.5 on the global representation; the reference code's Diginetica settings use two
hops with ``dropout_gcn = 0.2`` — here ``hops`` defaults to 1 (the paper's default; each hop
multiplies the neighbour vectors gathered per node by 12). Sessions are scored on the
block-diagonal batch (no padding); an item with fewer than 12 neighbours has the rest masked
(the reference code resamples its neighbours with replacement to fill 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sessionrec.batching.graphs import GraphBatch, GraphSource, graph_batch
from sessionrec.batching.item_graph import item_transition_graph
from sessionrec.batching.prefixes import PrefixBatch
from sessionrec.data.sessions import Sessions
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param
from sessionrec.models.neural.srgnn import uniform_init
from sessionrec.training.context import FitContext

DROPOUT = {"low": 0.0, "high": 1.0, "open_high": True}


@dataclass(frozen=True)
class GCEGNNParams(NeuralParams):
    hidden: int = param(100, low=1)
    hops: int = param(1, low=1, high=3)
    epsilon: int = param(3, low=1)
    neighbours: int = param(12, low=1)
    leaky_slope: float = param(0.2, low=0.0)
    dropout_global: float = param(0.5, **DROPOUT)
    dropout_local: float = param(0.0, **DROPOUT)
    dropout_gcn: float = param(0.0, **DROPOUT)
    global_attention: str = param("mlp", choices=("mlp", "linear"))
    batch_size: int = param(100, low=1)
    learning_rate: float = param(1e-3, low=0.0)
    weight_decay: float = param(1e-5, low=0.0)
    lr_decay: float = param(0.1, low=0.0, high=1.0)
    lr_decay_every: int = param(3, low=1)


def scatter_softmax(e: torch.Tensor, group: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of the scores ``e [K]`` within each group (``group [K]`` in ``[0, n)``)."""
    top = torch.full((n,), -torch.inf, dtype=e.dtype, device=e.device)
    top = top.scatter_reduce(0, group, e, "amax")
    ex = torch.exp(e - top[group])
    return ex / torch.zeros_like(top).index_add_(0, group, ex)[group]


class GlobalAggregator(nn.Module):
    """Eq. 1–4: session-aware attention over global neighbours, then ReLU(W₁ [h; h_N])."""

    def __init__(self, d: int, slope: float, dropout: float, attention: str) -> None:
        super().__init__()
        self.mlp = attention == "mlp"
        self.w = nn.Linear(d + 1, d if self.mlp else 1, bias=False)
        self.q = nn.Linear(d, 1, bias=False) if self.mlp else None
        self.w1 = nn.Linear(2 * d, d, bias=False)
        self.slope, self.drop = slope, nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, nb: torch.Tensor, weight: torch.Tensor,
                valid: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # h [K, d], nb [K, k, d], weight / valid [K, k], s [K, d] (the prefix's mean vector)
        x = torch.cat([s.unsqueeze(1) * nb, weight.unsqueeze(2)], dim=2)   # [K, k, d + 1]
        if self.q is not None:
            pi = self.q(F.leaky_relu(self.w(x), self.slope)).squeeze(2)    # [K, k]
        else:                                                               # "linear"
            pi = self.w(x).squeeze(2)
        pi = torch.softmax(pi.masked_fill(~valid, -1e9), dim=1) * valid    # none valid: 0
        h_nb = (pi.unsqueeze(2) * nb).sum(1)                               # [K, d]
        return torch.relu(self.w1(self.drop(torch.cat([h, h_nb], dim=1))))


class LocalAggregator(nn.Module):
    """Eq. 5–7: attention over each node's session-graph neighbours by relation."""

    def __init__(self, d: int, slope: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.empty(4, d))   # relations: self, out, in, in-out
        self.slope = slope

    def forward(self, g: GraphBatch, h: torch.Tensor) -> torch.Tensor:
        m = len(h)
        loop = g.edge_src != g.edge_dst
        s, d = g.edge_src[loop], g.edge_dst[loop]
        key = torch.cat([s * m + d, d * m + s])
        rel = torch.cat([torch.ones_like(s), torch.full_like(s, 2)])       # 1 out, 2 in
        key, inv = torch.unique(key, return_inverse=True)
        rel = torch.zeros_like(key).index_add_(0, inv, rel)                # 3: both ways
        nodes = torch.arange(m, device=h.device)
        u = torch.cat([nodes, key // m])                                   # self pairs first
        v = torch.cat([nodes, key % m])
        rel = torch.cat([torch.zeros_like(nodes), rel])
        e = F.leaky_relu((h[u] * h[v] * self.a[rel]).sum(1), self.slope)   # [pairs]
        alpha = scatter_softmax(e, u, m)
        return torch.zeros_like(h).index_add_(0, u, alpha.unsqueeze(1) * h[v])


class GCEGNNEncoder(nn.Module):
    def __init__(self, p: GCEGNNParams, output: ItemOutput, neighbours: torch.Tensor,
                 weights: torch.Tensor) -> None:
        super().__init__()
        d = p.hidden
        self.items = output.table                                   # [n_items + 1, d]
        self.pad = output.n_items
        self.register_buffer("neighbours", neighbours)              # [n_items + 1, k]
        self.register_buffer("weights", weights)                    # [n_items + 1, k]
        self.global_aggs = nn.ModuleList(
            GlobalAggregator(d, p.leaky_slope, p.dropout_gcn, p.global_attention)
            for _ in range(p.hops))
        self.local_agg = LocalAggregator(d, p.leaky_slope)
        self.drop_global, self.drop_local = nn.Dropout(p.dropout_global), nn.Dropout(
            p.dropout_local)
        self.positions = nn.Embedding(p.max_len, d)                 # reversed positions
        self.w3 = nn.Linear(2 * d, d, bias=False)
        self.w4 = nn.Linear(d, d)                                   # its bias is c
        self.w5 = nn.Linear(d, d, bias=False)
        self.q = nn.Linear(d, 1, bias=False)
        uniform_init(self, output, d)

    def global_level(self, g: GraphBatch, s_node: torch.Tensor) -> torch.Tensor:
        """h^g [M, d]: ``hops`` rounds of eq. 1–4 over the nodes' global neighbourhoods."""
        k = self.neighbours.shape[1]
        levels = [g.nodes]                                          # items at hop 0, 1, …
        for _ in self.global_aggs:
            levels.append(self.neighbours[levels[-1]].reshape(-1))
        sizes = [len(level) for level in levels]
        vecs = list(self.items(torch.cat(levels)).split(sizes))    # one lookup, one grad
        weights = [self.weights[level] for level in levels[:-1]]   # [K, k] per hop
        sess = [s_node.repeat_interleave(k ** i, dim=0) for i in range(len(levels) - 1)]
        for n, agg in enumerate(self.global_aggs):
            vecs = [agg(vecs[i], vecs[i + 1].view(-1, k, vecs[i].shape[1]), weights[i],
                        levels[i + 1].view(-1, k) != self.pad, sess[i])
                    for i in range(len(self.global_aggs) - n)]
        return vecs[0]

    def forward(self, g: GraphBatch) -> torch.Tensor:
        h = self.items(g.nodes)                                     # [M, d]
        b, d = len(g.lengths), h.shape[1]
        length = g.lengths.unsqueeze(1).to(h.dtype)                 # [B, 1]
        s = torch.zeros(b, d, dtype=h.dtype, device=h.device).index_add_(
            0, g.pos_graph, h[g.alias]) / length                    # [B, d] mean item vector
        h_global = self.global_level(g, s[g.node_graph])
        h_local = self.local_agg(g, h)
        hv = self.drop_global(h_global) + self.drop_local(h_local)  # [M, d]
        seq = hv[g.alias]                                           # [P, d]
        rev = g.lengths[g.pos_graph] - 1 - g.pos_index              # 0 = the last click
        z = torch.tanh(self.w3(torch.cat([seq, self.positions(rev)], dim=1)))
        s_mean = torch.zeros_like(s).index_add_(0, g.pos_graph, seq) / length
        beta = self.q(torch.sigmoid(self.w4(z) + self.w5(s_mean)[g.pos_graph]))  # [P, 1]
        return torch.zeros_like(s).index_add_(0, g.pos_graph, beta * seq)        # S [B, d]


@register_model
class GCEGNN(NeuralRecommender):
    """GCE-GNN (see the module docstring); parameters: :class:`GCEGNNParams`."""

    name = "gcegnn"
    Params = GCEGNNParams

    def output_dim(self) -> int:
        return self.params.hidden

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        graph = getattr(self, "global_graph_", None)
        if graph is None:  # loading: the saved buffers overwrite these
            k = self.params.neighbours
            graph = (torch.full((n_items + 1, k), n_items, dtype=torch.int64),
                     torch.zeros(n_items + 1, k))
        return GCEGNNEncoder(self.params, output, *graph)

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        self.global_graph_ = item_transition_graph(train, self.params.epsilon,
                                                   self.params.neighbours)
        super()._fit_in_context(train, valid, context)

    def batch_source(self, train: Sessions, rank: int, world_size: int) -> GraphSource:
        return GraphSource(train, self._rank_batch(world_size), self.params.max_len,
                           self.params.seed, rank, world_size)

    def collate(self, batch: PrefixBatch) -> GraphBatch:
        return graph_batch(batch)
