"""Session graphs (SR-GNN §3.2) and the global item graph (GCE-GNN §3.2), hand-computed."""

from __future__ import annotations

import pytest
import torch

from sessionrec.batching.graphs import GraphSource, graph_batch
from sessionrec.batching.item_graph import item_transition_graph
from sessionrec.batching.prefixes import PrefixBatch, batch_from_lists
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError

H = 0.5
# SR-GNN's Figure 2 session v1 → v2 → v3 → v2 → v4 (nodes in ascending item order).
PAPER_OUT = [[0, 1, 0, 0], [0, 0, H, H], [0, 1, 0, 0], [0, 0, 0, 0]]
PAPER_IN = [[0, 0, 0, 0], [H, 0, H, 0], [0, 1, 0, 0], [0, 1, 0, 0]]


def test_the_papers_session_gives_the_papers_matrices():
    g = graph_batch(batch_from_lists([[1, 2, 3, 2, 4]], n_items=6, max_len=50))
    nodes, a_in, a_out = g.adjacency(0)
    assert nodes.tolist() == [1, 2, 3, 4]
    assert a_out.tolist() == PAPER_OUT
    assert a_in.tolist() == PAPER_IN
    assert g.alias.tolist() == [0, 1, 2, 1, 3]
    assert g.last.tolist() == [3]
    assert g.pos_index.tolist() == [0, 1, 2, 3, 4]


def test_a_batch_is_one_block_diagonal_graph():
    # rows: a repeated click (self-loop), the paper's session, a single click
    g = graph_batch(batch_from_lists([[5, 5], [1, 2, 3, 2, 4], [0]], n_items=6, max_len=50))
    assert g.nodes.tolist() == [5, 1, 2, 3, 4, 0]
    assert g.node_graph.tolist() == [0, 1, 1, 1, 1, 2]
    assert g.alias.tolist() == [0, 0, 1, 2, 3, 2, 4, 5]          # node 0 .. 5, not per row
    assert g.pos_graph.tolist() == [0, 0, 1, 1, 1, 1, 1, 2]
    assert g.last.tolist() == [0, 4, 5]
    assert g.adjacency(0)[1].tolist() == [[1.0]] == g.adjacency(0)[2].tolist()
    assert g.adjacency(1)[2].tolist() == PAPER_OUT
    assert g.adjacency(2)[1].tolist() == [[0.0]]
    # the edges never cross graphs
    assert (g.node_graph[g.edge_src] == g.node_graph[g.edge_dst]).all()


def test_repeated_transitions_count_their_occurrences():
    # 1 → 2 twice, 2 → 1 once, 2 → 3 once. Rows/columns are items 1, 2, 3:
    # item 1 leaves only to 2 (2 of 2), item 2 to 1 and 3 (1 of 2 each);
    # item 1 is entered from 2 (1 of 1), item 2 from 1 (2 of 2), item 3 from 2 (1 of 1)
    _, a_in, a_out = graph_batch(batch_from_lists([[1, 2, 1, 2, 3]], 6, 50)).adjacency(0)
    assert a_out.tolist() == [[0, 1, 0], [H, 0, H], [0, 0, 0]]
    assert a_in.tolist() == [[0, 1, 0], [1, 0, 0], [0, 1, 0]]


def test_long_prefixes_are_front_truncated_before_the_graph():
    g = graph_batch(batch_from_lists([[1, 2, 3, 2, 4]], n_items=6, max_len=3))
    nodes, _, a_out = g.adjacency(0)
    assert nodes.tolist() == [2, 3, 4]                             # [3, 2, 4] kept
    assert a_out.tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 0]]


def test_unknown_items_are_refused():
    bad = PrefixBatch(torch.tensor([[1, 9]]), torch.tensor([2]), torch.tensor([-1]),
                      torch.tensor([-1]), pad=6)
    with pytest.raises(DataError, match=r"item index 9 at row 0, position 1 .* \[0, 6\)"):
        graph_batch(bad)
    with pytest.raises(DataError, match="outside the model's catalogue"):
        graph_batch(batch_from_lists([[1, 7]], n_items=6, max_len=5))


def test_graph_source_yields_every_prefix_sharded_per_rank():
    sessions = Sessions.from_lists([[0, 1, 2, 1], [3, 4]], 5)
    shards = [list(GraphSource(sessions, 8, 10, seed=1, rank=r, world_size=2).epoch(0))
              for r in (0, 1)]
    cases = []
    for batches in shards:
        assert sum(len(b.targets) for b in batches) == 2           # 4 cases, 2 per rank
        for b in batches:
            for row in range(len(b.targets)):
                prefix = b.nodes[b.alias[b.pos_graph == row]].tolist()
                cases.append((prefix, int(b.targets[row])))
    assert sorted(cases) == [([0], 1), ([0, 1], 2), ([0, 1, 2], 1), ([3], 4)]


def test_global_graph_keeps_the_heaviest_epsilon_neighbours():
    sessions = Sessions.from_lists([[1, 2, 3, 2, 4], [0, 1]], 5)
    # ε = 1: pairs 1-2, 2-3 (twice: 2→3 and 3→2), 2-4, and 0-1 from the second session
    nb, w = item_transition_graph(sessions, epsilon=1, top_k=2)
    assert nb.tolist() == [[1, 5], [0, 2], [3, 1], [2, 5], [2, 5], [5, 5]]
    assert w.tolist() == [[1, 0], [1, 1], [2, 1], [2, 0], [1, 0], [0, 0]]
    # ε = 2 adds 1-3, 2-2 (a self-edge, counted both ways) and 3-4
    nb, w = item_transition_graph(sessions, epsilon=2, top_k=3)
    assert nb[2].tolist() == [2, 3, 1] and w[2].tolist() == [2, 2, 1]
    assert nb[3].tolist() == [2, 1, 4] and w[3].tolist() == [2, 1, 1]
    with pytest.raises(ConfigError, match="epsilon >= 1"):
        item_transition_graph(sessions, epsilon=0, top_k=2)
