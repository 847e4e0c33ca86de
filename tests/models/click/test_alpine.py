"""ALPINE's pieces on hand-computed cases: graph edges, eq. 7 fusion, the α grid, causality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.batching.behaviours import UserRows, make_batch
from sessionrec.models.neural.alpine import AlpineNet, AlpineParams, alpha_grid, fuse
from sessionrec.models.neural.graph_lstm import (
    GraphLSTM,
    feature_similarity,
    temporal_neighbours,
)


def codes(rows):
    """[1, L, 5] feature codes from (author, tag) pairs."""
    return torch.tensor([[[a, t, 0, 0, 0] for a, t in rows]])


def test_graph_edges_of_a_small_click_sequence():
    # A (author 1, tag 1), B (2, 2), C (1, 2), D (2, 1), E (3, 2); sim 2*author + 1*tag
    c = codes([(1, 1), (2, 2), (1, 2), (2, 1), (3, 2)])
    sim = feature_similarity(c)
    assert sim[0, 2].tolist() == [2.0, 1.0, 3.0, 0.0, 1.0]  # C vs A (author), B (tag), ...
    valid = torch.ones(1, 5, dtype=torch.bool)
    idx, has = temporal_neighbours(sim, valid, k=1)
    # node 0: none; 1: A; 2: A (author, 2) over B (tag, 1); 3: B (author); 4: B and C tie
    # (tag, 1) -> the most recent, C
    assert has[0, :, 0].tolist() == [False, True, True, True, True]
    assert idx[0, 1:, 0].tolist() == [0, 0, 1, 2]
    idx2, has2 = temporal_neighbours(sim, valid, k=2)
    assert idx2[0, 3].tolist() == [1, 0]  # D: B (2), then A (tag, 1); C scores 0
    assert has2[0, 1].tolist() == [True, False]  # node 1 has only one earlier node


def test_padding_is_never_a_neighbour():
    c = codes([(1, 1), (1, 1), (0, 0)])
    valid = torch.tensor([[True, False, True]])
    idx, has = temporal_neighbours(feature_similarity(c), valid, k=2)
    assert has[0, 2].tolist() == [True, False] and idx[0, 2, 0] == 0


def test_fusion_is_eq_7():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]])
    alpha = torch.tensor([0.58, 0.18, 0.24])
    assert fuse(logits, alpha).tolist() == pytest.approx([0.58 + 0.36 + 0.72, -0.18 + 0.24])


def test_alpha_grid_covers_the_enabled_simplex():
    assert len(alpha_grid((True, True, True))) == 66  # C(10 + 2, 2)
    only_in_en = alpha_grid((True, False, True))
    assert len(only_in_en) == 11 and all(a[1] == 0 for a in only_in_en)


def test_ablation_renormalises_alpha():
    p = AlpineParams(unclick=False)
    net = AlpineNet(p, np.zeros((3, 5), dtype=np.int64), (1, 1, 1, 1, 1), n_users=2)
    assert net.uninterest is None
    assert net.alpha.tolist() == pytest.approx([0.58 / 0.82, 0.0, 0.24 / 0.82])


@pytest.mark.parametrize("graph", [True, False])
def test_graph_lstm_is_causal(graph):
    torch.manual_seed(0)
    lstm = GraphLSTM(4, 3, graph=graph)
    x = torch.randn(1, 5, 4)
    idx = torch.tensor([[[0], [0], [0], [1], [2]]])
    has = torch.tensor([[[False], [True], [True], [True], [True]]])
    h = lstm(x, idx, has)
    x2 = x.clone()
    x2[0, 3:] = torch.randn(2, 4)
    h2 = lstm(x2, idx, has)
    assert torch.equal(h[0, :3], h2[0, :3]) and not torch.equal(h[0, 3:], h2[0, 3:])


def test_targets_only_see_earlier_history():
    torch.manual_seed(0)
    p = AlpineParams(embedding=4, hidden=4, mlp=4)
    net = AlpineNet(p, np.zeros((5, 5), dtype=np.int64), (1, 1, 1, 1, 1), n_users=1).eval()
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def rows(clicks):
        return [UserRows(0, (np.array(clicks), np.arange(len(clicks)) * 10), empty, empty,
                         empty, np.array([3, 3]), np.array([15, 100]), np.array([1, 0]),
                         np.array([-1, -1]))]

    a = net.logits(make_batch(rows([0, 1, 2]), 5, 300))
    b = net.logits(make_batch(rows([0, 1, 4]), 5, 300))  # the click at t=20 changes
    assert a[0] == b[0]  # the target at t=15 saw clicks at 0 and 10 only
    assert a[1] != b[1]


def test_graph_lstm_without_graph_is_a_standard_lstm():
    # eq. 1: with graph=False the cell must match torch's LSTM given the same weights
    torch.manual_seed(1)
    ours = GraphLSTM(3, 4, graph=False)
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    # torch orders the gates i, f, g(u), o; ours i, f, o, u
    perm = torch.cat([torch.arange(0, 8), torch.arange(12, 16), torch.arange(8, 12)])
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.wx.weight[perm])
        ref.bias_ih_l0.copy_(ours.wx.bias[perm])
        ref.weight_hh_l0.copy_(ours.wh.weight[perm])
        ref.bias_hh_l0.zero_()
    x = torch.randn(2, 5, 3)
    expected, _ = ref(x)
    assert torch.allclose(ours(x), expected, atol=1e-6)


def test_click_attention_covers_only_earlier_clicks():
    torch.manual_seed(0)
    p = AlpineParams(embedding=4, hidden=4, mlp=4)
    net = AlpineNet(p, np.zeros((5, 5), dtype=np.int64), (1, 1, 1, 1, 1), n_users=1).eval()
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    rows = [UserRows(0, (np.array([0, 1, 2]), np.array([0, 10, 20])), empty, empty, empty,
                     np.array([3, 4]), np.array([15, 5]), np.array([1, 0]), np.array([-1, -1]))]
    alpha = net.click_attention(make_batch(rows, 5, 300))
    assert alpha[0, 2] == 0 and alpha[0, :2].sum().item() == pytest.approx(1.0)
    assert alpha[1].tolist() == [1.0, 0.0, 0.0]  # only the click at t=0 precedes t=5
