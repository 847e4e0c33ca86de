"""Session graphs: every prefix as a small directed item graph (SR-GNN §3.2, GCE-GNN §3.2).

A prefix ``[v1, v2, v3, v2, v4]`` becomes the graph of its **unique items** (the nodes,
in ascending item order) with an edge ``u → v`` for every consecutive click pair. As in
SR-GNN (Wu et al. 2019, §3.2 and Figure 2), the connection matrix is ``A = [A_in, A_out]``:

* ``A_out[u, v] = count(u → v) / Σ_w count(u → w)`` — outgoing edges normalised by the
  out-degree of the start node (the paper's "occurrence of the edge divided by the outdegree
  of that edge's start node"; the reference code sets a repeated edge to 1 instead of its
  count, which only differs for sessions that repeat a transition);
* ``A_in[v, u] = count(u → v) / Σ_w count(w → v)`` — incoming edges normalised by the
  in-degree of the end node.

For the session above (nodes ``[v1, v2, v3, v4]``)::

    A_out = [[0, 1, 0,  0 ],        A_in = [[0,  0, 0,  0],
             [0, 0, ½,  ½ ],                [½,  0, ½,  0],
             [0, 1, 0,  0 ],                [0,  1, 0,  0],
             [0, 0, 0,  0 ]]                [0,  1, 0,  0]]

and ``alias = [0, 1, 2, 1, 3]`` maps each position of the prefix to its node.

**Layout: one block-diagonal graph per batch, stored as edge lists.** The ``B`` graphs of a
batch are numbered into one node list (``nodes [M]``, graph ``node_graph [M]``), their edges
into ``edge_src / edge_dst [E]`` (unique directed pairs) with the weights ``edge_out`` (the
``A_out`` entry) and ``edge_in`` (the ``A_in`` entry), and the prefix positions into
``alias [P]`` (``P`` = the batch's clicks). Propagation is then a gather and an
``index_add_`` over the ``E`` edges, the readout a gather and an ``index_add_`` over the
``P`` positions. The alternative — dense ``[B, N, N]`` adjacency and ``[B, L, d]`` positions
padded to the batch's largest graph, as the reference code does — spends most of its time on
padding on the CPU: a Diginetica prefix has about 4 clicks on average but a batch of 512 holds
one of 50, so a dense GRU step touched ~10× the real nodes (measured: 1.75 s per batch of 512
for SR-GNN dense, far less block-diagonal; see docs/neural.md). The whole batch is built with
tensor operations (sort, cumulative sums, ``unique``), no Python loop per session.

Prefixes come from :class:`~sessionrec.batching.prefixes.PrefixSource` (so they are
shuffled per (seed, epoch), sharded per rank and **front-truncated at** ``max_len``: a longer
prefix keeps its most recent ``max_len`` clicks, and its graph is the graph of those).
An item outside ``[0, n_items)`` is refused with a :class:`~sessionrec.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sessionrec.batching.prefixes import PrefixBatch, PrefixSource
from sessionrec.errors import DataError


@dataclass(frozen=True)
class GraphBatch:
    """A batch of ``B`` session graphs (one per prefix) as one block-diagonal graph.

    Attributes:
        nodes: int64 [M] the item of every node (each graph's unique items, ascending,
            graph after graph).
        node_graph: int64 [M] the graph (row of the batch) of every node.
        edge_src, edge_dst: int64 [E] the unique directed edges ``src → dst`` (node indices).
        edge_out: float32 [E] ``A_out[src, dst]`` (occurrences / out-degree of ``src``).
        edge_in: float32 [E] ``A_in[dst, src]`` (occurrences / in-degree of ``dst``).
        alias: int64 [P] the node of every prefix position (graph after graph, in click order).
        pos_graph: int64 [P] the graph of every position.
        pos_index: int64 [P] the position's index in its (front-truncated) prefix, from 0.
        last: int64 [B] the node of each prefix's most recent click.
        lengths: int64 [B] prefix lengths (>= 1).
        targets: int64 [B] the item to predict (-1 when unknown).
        users: int64 [B] user index per row (-1: unknown).
        pad: the padding index (= ``n_items``).
    """

    nodes: torch.Tensor
    node_graph: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_out: torch.Tensor
    edge_in: torch.Tensor
    alias: torch.Tensor
    pos_graph: torch.Tensor
    pos_index: torch.Tensor
    last: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    users: torch.Tensor
    pad: int

    def to(self, device: torch.device) -> GraphBatch:
        t = [x.to(device) for x in (
            self.nodes, self.node_graph, self.edge_src, self.edge_dst, self.edge_out,
            self.edge_in, self.alias, self.pos_graph, self.pos_index, self.last,
            self.lengths, self.targets, self.users)]
        return GraphBatch(*t, self.pad)

    def adjacency(self, graph: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(items [n], A_in [n, n], A_out [n, n])`` of one graph, dense (for inspection)."""
        idx = torch.nonzero(self.node_graph == graph).squeeze(1)
        lo, n = int(idx[0]), len(idx)
        a_in, a_out = torch.zeros(n, n), torch.zeros(n, n)
        mine = self.node_graph[self.edge_src] == graph
        s, d = self.edge_src[mine] - lo, self.edge_dst[mine] - lo
        a_out[s, d] = self.edge_out[mine].cpu()
        a_in[d, s] = self.edge_in[mine].cpu()
        return self.nodes[idx], a_in, a_out


def _check(items: torch.Tensor, mask: torch.Tensor, pad: int) -> None:
    bad = mask & ((items < 0) | (items > pad))
    if bool(bad.any()):
        row, col = torch.nonzero(bad)[0].tolist()
        raise DataError(f"session graph: item index {int(items[row, col])} at row {row}, "
                        f"position {col} is outside the model's catalogue [0, {pad}); "
                        "encode the data with the model's vocabulary")


def graph_batch(batch: PrefixBatch) -> GraphBatch:
    """The session graphs of a batch of right-padded prefixes (see the module docstring)."""
    items, pad = batch.items, batch.pad
    mask = items != pad                                                 # [B, L]
    _check(items, mask, pad)
    b, width = items.shape
    rows = torch.arange(b).unsqueeze(1).expand(b, width)
    ordered, order = items.sort(dim=1)                                  # padding sorts last
    first = torch.ones_like(mask)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first &= ordered != pad                                             # a new node here
    local = first.long().cumsum(1) - 1                                  # node within graph
    n_nodes = first.sum(1)                                              # [B]
    offset = n_nodes.cumsum(0) - n_nodes                                # first node of graph
    nodes = ordered[first]                                              # [M]
    alias = torch.zeros_like(items).scatter_(1, order, local.clamp(min=0)) + offset[:, None]
    m = len(nodes)
    edge = mask[:, 1:]                                                  # u → v click pairs
    key, count = torch.unique(alias[:, :-1][edge] * m + alias[:, 1:][edge],
                              return_counts=True)
    src, dst, count = key // m, key % m, count.float()
    out_deg = torch.zeros(m).index_add_(0, src, count)
    in_deg = torch.zeros(m).index_add_(0, dst, count)
    return GraphBatch(
        nodes=nodes, node_graph=rows[first], edge_src=src, edge_dst=dst,
        edge_out=count / out_deg[src], edge_in=count / in_deg[dst],
        alias=alias[mask], pos_graph=rows[mask],
        pos_index=torch.arange(width).expand(b, width)[mask],
        last=alias.gather(1, (batch.lengths - 1).unsqueeze(1)).squeeze(1),
        lengths=batch.lengths, targets=batch.targets, users=batch.users, pad=pad)


class GraphSource(PrefixSource):
    """Every prefix of the training sessions as a session graph → next item.

    The cases, their shuffling per (seed, epoch), the per-rank shards and the front
    truncation at ``max_len`` are :class:`PrefixSource`'s; each batch becomes a
    :class:`GraphBatch`.
    """

    def batch(self, case_idx: torch.Tensor) -> GraphBatch:  # type: ignore[override]
        return graph_batch(super().batch(case_idx))
