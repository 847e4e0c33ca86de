"""StateMemo: the longest memoised prefix, LRU eviction, emptied by a weight change."""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.models.neural.state_memo import StateMemo, weights_key


def states(n: int, tag: float = 0.0):
    return torch.arange(n).float().add(tag).expand(1, 2, n).transpose(1, 2), torch.zeros(1, n, 2)


def length(hit) -> int:
    return 0 if hit is None else hit[0].shape[1]


def test_lookup_finds_the_longest_prefix_within_back():
    memo = StateMemo(back=2)
    memo.store(np.array([4, 5]), states(2))
    memo.store(np.array([4, 5, 6]), states(3, 10.0))
    h, _ = memo.lookup(np.array([4, 5, 6, 7]), ())
    assert h.shape == (1, 3, 2) and h[0, 0].tolist() == [10.0, 10.0]  # [4, 5, 6], not [4, 5]
    assert memo.lookup(np.array([4, 5, 6, 7, 8, 9]), ()) is None  # 3 events too many
    assert memo.lookup(np.array([9, 5, 6]), ()) is None  # first item differs
    assert memo.lookup(np.array([4]), ()) is None  # shorter than every entry


def test_least_recently_used_leaves_first():
    memo = StateMemo(positions=4)
    for seq in ([1, 1], [2], [3]):
        memo.store(np.array(seq), states(len(seq)))
    assert len(memo) == 3
    memo.lookup(np.array([1, 1]), ())  # used: [2] is now the least recently used
    memo.store(np.array([4]), states(1))  # 5 positions > 4: [2] leaves
    assert memo.lookup(np.array([2]), ()) is None
    assert [length(memo.lookup(np.array(s), ())) for s in ([1, 1], [3], [4])] == [2, 1, 1]


def test_a_weight_change_empties_it():
    w = torch.zeros(3)
    memo = StateMemo()
    memo.store(np.array([1, 2]), states(2))
    assert memo.lookup(np.array([1, 2]), weights_key([w])) is None  # first key: emptied
    memo.store(np.array([1, 2]), states(2))
    assert length(memo.lookup(np.array([1, 2]), weights_key([w]))) == 2
    w.add_(1.0)  # in place, as an optimiser step or load_state_dict
    assert memo.lookup(np.array([1, 2]), weights_key([w])) is None and len(memo) == 0
