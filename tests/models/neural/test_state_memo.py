"""StateMemo: the longest memoised prefix, LRU eviction, emptied by a weight change."""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.models.neural.state_memo import StateMemo, weights_key


def states(n: int, tag: float = 0.0):
    return [torch.full((1, 2), tag + t) for t in range(n)], [torch.zeros(1, 2)] * n


def test_lookup_finds_the_longest_prefix_within_back():
    memo = StateMemo(size=10, back=2)
    memo.store(np.array([4, 5]), states(2))
    memo.store(np.array([4, 5, 6]), states(3, 10.0))
    hs, _ = memo.lookup(np.array([4, 5, 6, 7]), ())
    assert len(hs) == 3 and hs[0].tolist() == [[10.0, 10.0]]  # [4, 5, 6], not [4, 5]
    assert memo.lookup(np.array([4, 5, 6, 7, 8, 9]), ()) == ([], [])  # 3 events too many
    assert memo.lookup(np.array([9, 5, 6]), ()) == ([], [])  # first item differs
    assert memo.lookup(np.array([4]), ()) == ([], [])  # shorter than every entry


def test_least_recently_used_leaves_first():
    memo = StateMemo(size=2)
    for seq in ([1], [2], [3]):
        memo.store(np.array(seq), states(1))
    assert len(memo) == 2 and memo.lookup(np.array([1]), ()) == ([], [])
    assert len(memo.lookup(np.array([2]), ())[0]) == 1


def test_a_weight_change_empties_it():
    w = torch.zeros(3)
    memo = StateMemo()
    memo.store(np.array([1, 2]), states(2))
    assert len(memo.lookup(np.array([1, 2]), weights_key([w]))[0]) == 0  # first key: empty
    memo.store(np.array([1, 2]), states(2))
    assert len(memo.lookup(np.array([1, 2]), weights_key([w]))[0]) == 2
    w.add_(1.0)  # in place, as an optimiser step or load_state_dict
    assert memo.lookup(np.array([1, 2]), weights_key([w])) == ([], []) and len(memo) == 0
