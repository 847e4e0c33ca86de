"""Padded-prefix batches: every prefix → next item, front truncation, shuffling, sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.batching.prefixes import PrefixSource, batch_from_lists
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError

SESSIONS = [[0, 1, 2, 3], [4, 5], [6]]  # cases: [0]→1, [0,1]→2, [0,1,2]→3, [4]→5


def cases_of(source: PrefixSource, epoch: int = 0) -> list[tuple[list[int], int]]:
    out = []
    for b in source.epoch(epoch):
        for row, n, t in zip(b.items.tolist(), b.lengths.tolist(), b.targets.tolist(),
                             strict=True):
            assert all(i == b.pad for i in row[n:])  # right padding only
            out.append((row[:n], t))
    return out


def test_every_prefix_is_one_case_with_its_next_item():
    source = PrefixSource(Sessions.from_lists(SESSIONS, 7), batch_size=3, max_len=10)
    assert len(source) == 2 and source.n_cases == 4
    assert sorted(cases_of(source)) == [([0], 1), ([0, 1], 2), ([0, 1, 2], 3), ([4], 5)]


def test_long_prefixes_keep_their_last_items():
    source = PrefixSource(Sessions.from_lists(SESSIONS, 7), batch_size=4, max_len=2)
    assert sorted(cases_of(source)) == [([0], 1), ([0, 1], 2), ([1, 2], 3), ([4], 5)]


def test_batch_helpers():
    b = batch_from_lists([[3, 1, 2], [5]], n_items=7, max_len=2, users=[4, -1])
    assert b.items.tolist() == [[1, 2], [5, 7]]
    assert b.last_items().tolist() == [2, 5]
    assert b.mask.tolist() == [[True, True], [True, False]]
    assert b.users.tolist() == [4, -1]


def test_epochs_shuffle_deterministically():
    sessions = Sessions.from_lists([list(range(i, i + 5)) for i in range(20)], 30)
    a = PrefixSource(sessions, 8, 10, seed=1)
    b = PrefixSource(sessions, 8, 10, seed=1)
    assert cases_of(a, 0) == cases_of(b, 0)
    assert cases_of(a, 0) != cases_of(a, 1)
    assert sorted(cases_of(a, 0)) == sorted(cases_of(a, 1))


def test_ranks_take_disjoint_equal_shares():
    sessions = Sessions.from_lists([list(range(i, i + 4)) for i in range(11)], 20)  # 33 cases
    shares = [PrefixSource(sessions, 5, 10, seed=3, rank=r, world_size=2) for r in range(2)]
    got = [cases_of(s) for s in shares]
    assert len(got[0]) == len(got[1]) == 16 and len(shares[0]) == len(shares[1]) == 4
    every = PrefixSource(sessions, 5, 10, seed=3)
    ids = [set(map(str, g)) for g in got]
    assert not ids[0] & ids[1]
    assert ids[0] | ids[1] <= set(map(str, cases_of(every)))


def test_bad_input_is_refused():
    sessions = Sessions.from_lists(SESSIONS, 7)
    with pytest.raises(ConfigError, match="cannot be shared by 9 processes"):
        PrefixSource(sessions, 2, 5, rank=0, world_size=9)
    with pytest.raises(ConfigError, match="max_len"):
        PrefixSource(sessions, 2, 0)
    with pytest.raises(DataError, match=r"item index 9 .* outside"):
        batch_from_lists([[1, 9]], n_items=7, max_len=5)
    broken = Sessions.from_lists(SESSIONS, 7)
    object.__setattr__(broken, "items", np.array([0, 1, 2, 3, 4, 5, 8]))
    with pytest.raises(DataError, match="outside the model's catalogue"):
        PrefixSource(broken, 2, 5)
    assert torch.equal(batch_from_lists([[1]], 7, 1).targets, torch.tensor([-1]))
