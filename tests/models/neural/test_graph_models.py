"""SR-GNN and GCE-GNN against hand-written dense forms of their equations."""

from __future__ import annotations

import torch

from sessionrec.batching.graphs import graph_batch
from sessionrec.batching.item_graph import item_transition_graph
from sessionrec.batching.prefixes import batch_from_lists
from sessionrec.data.sessions import Sessions
from sessionrec.models.base import get_model_class
from sessionrec.models.neural.gcegnn import scatter_softmax
from sessionrec.models.neural.output import ItemOutput


def test_srgnn_propagation_is_the_papers_dense_equation():
    torch.manual_seed(0)
    model = get_model_class("srgnn")(hidden=4)
    output = ItemOutput(6, 4)
    enc = model.build_encoder(6, output)
    g = graph_batch(batch_from_lists([[5, 5], [1, 2, 3, 2, 4]], n_items=6, max_len=50))
    v = output.table(g.nodes)
    got = enc.gnn(g, v)[1:]                                     # the second graph's nodes
    _, a_in, a_out = g.adjacency(1)
    x = v[1:]
    w_in, w_out = enc.gnn.edge_in, enc.gnn.edge_out
    a = torch.cat([a_in @ (x @ w_in.weight.t()) + w_in.bias,      # eq. 1: A_s,i: V H + b
                   a_out @ (x @ w_out.weight.t()) + w_out.bias], dim=1)
    expected = enc.gnn.gru(a, x)                                 # eq. 2–5
    torch.testing.assert_close(got, expected)
    # readout: s_l is the last click's node (v4), the attention runs over the 5 positions
    h = enc(g)
    assert h.shape == (2, 4)


def test_scatter_softmax_normalises_within_groups():
    e = torch.tensor([0.0, 0.0, 1.0, 5.0])
    p = scatter_softmax(e, torch.tensor([0, 0, 1, 2]), 3)
    torch.testing.assert_close(p, torch.tensor([0.5, 0.5, 1.0, 1.0]))


def test_gcegnn_global_graph_comes_from_the_training_sessions_only():
    train = Sessions.from_lists([[0, 1, 2], [1, 2, 3], [2, 3]], 5)
    valid = Sessions.from_lists([[0, 4, 0, 4]], 5)
    model = get_model_class("gcegnn")(hidden=4, batch_size=2, n_epochs=1, neighbours=2,
                                      epsilon=1, progress=False)
    model.fit(train, valid)
    nb, w = item_transition_graph(train, 1, 2)
    enc = model.net_.encoder
    assert torch.equal(enc.neighbours, nb) and torch.equal(enc.weights, w)
    assert 4 not in enc.neighbours[0].tolist()                  # 0–4 only occurs in valid
    assert nb[2].tolist() == [1, 3] and w[2].tolist() == [2, 2]
