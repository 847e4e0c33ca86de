"""The global item-transition graph of GCE-GNN (Wang et al., SIGIR 2020, §3.2 and §5.1).

Every pair of items that occur within ``epsilon`` positions of each other in a training
session is an undirected edge ``(v_i, v_j)`` of the global graph, weighted by how often it
occurs over all training sessions (the ε-neighbour set ``N_ε(v)``, counted in both
directions, as the reference code does; a session that repeats an item within ε positions
gives that item a self-edge, also as the reference). Each item keeps its ``top_k``
neighbours of highest weight (the paper's 12; ties broken by the smaller item index).

The graph is built from the **training sessions only** (never the evaluation data) with
tensor operations over all events at once (``torch.unique`` of the pair keys), and stored as
two tables with one row per item plus a last row for the padding index ``n_items``:

* ``neighbours [n_items + 1, top_k]`` item indices, padded with ``n_items``;
* ``weights [n_items + 1, top_k]`` float occurrence counts, 0 at padding.

Example: the one session ``[1, 2, 3, 2, 4]`` with ``epsilon = 1`` gives the edges 1–2 (1),
2–3 (2: 2→3 and 3→2), 2–4 (1), so item 2's neighbours by weight are ``[3, 1, 4]`` with
weights ``[2, 1, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError


def item_transition_graph(sessions: Sessions, epsilon: int, top_k: int,
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(neighbours, weights)`` of the global graph (see the module docstring)."""
    if epsilon < 1 or top_k < 1:
        raise ConfigError(f"the global item graph needs epsilon >= 1 and top_k >= 1 "
                          f"(got epsilon = {epsilon}, top_k = {top_k})")
    n = int(sessions.n_items)
    items = torch.from_numpy(sessions.items.astype(np.int64))
    session = torch.from_numpy(np.repeat(np.arange(sessions.n_sessions), sessions.lengths))
    keys = []
    for k in range(1, epsilon + 1):
        same = session[k:] == session[:-k]
        a, b = items[:-k][same], items[k:][same]
        keys += [a * n + b, b * n + a]
    key, count = torch.unique(torch.cat(keys), return_counts=True)  # sorted by (src, dst)
    by_weight = torch.argsort(-count, stable=True)
    order = by_weight[torch.argsort(key[by_weight] // n, stable=True)]  # src, -w, dst
    src, dst, weight = key[order] // n, key[order] % n, count[order].float()
    group_start = torch.searchsorted(src, src)                          # first edge of src
    rank = torch.arange(len(src)) - group_start
    keep = rank < top_k
    neighbours = torch.full((n + 1, top_k), n, dtype=torch.int64)
    weights = torch.zeros(n + 1, top_k)
    neighbours[src[keep], rank[keep]] = dst[keep]
    weights[src[keep], rank[keep]] = weight[keep]
    return neighbours, weights
