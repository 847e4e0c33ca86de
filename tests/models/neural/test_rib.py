"""RIB and its behaviour batches: event types and dwell buckets aligned with the items."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.batching.micro import (
    MicroSource,
    behaviour_rows,
    dwell_buckets,
    event_dwell,
)
from sessionrec.data.sessions import Sessions, event_type_codes, event_type_names
from sessionrec.evaluation.evaluator import evaluate
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.models.neural.rib import remap_codes
from sessionrec.runs import concat_sessions


def with_behaviours(sessions: list[list[int]], kinds: list[list[int]], ts: list[list[int]],
                    n_items: int, names=("cart", "view")) -> Sessions:
    base = Sessions.from_lists(sessions, n_items)
    return dataclasses.replace(
        base, ts=np.array([t for s in ts for t in s], dtype=np.int64),
        event_types=np.array([k for s in kinds for k in s], dtype=np.int64),
        event_type_names=tuple(names))


def test_dwell_buckets_are_log2_of_one_plus_seconds():
    # 0 s -> 1, 1 s -> 2, 2 s -> 2 (log2 3 = 1.58), 3 s -> 3, 7 s -> 4, 100 s -> 7, cap 5
    assert dwell_buckets(np.array([0, 1, 2, 3, 7, 100, -5]), 5).tolist() == [1, 2, 2, 3, 4, 5, 1]


def test_event_dwell_is_the_time_to_the_next_event_of_the_same_session():
    s = with_behaviours([[0, 1, 2], [3, 4]], [[2, 2, 1], [2, 1]],
                        [[0, 3, 10], [500, 500]], 5)
    # session 0: 3 s -> 3, 7 s -> 4, last event 0; session 1: 0 s -> 1, last 0
    assert event_dwell(s, 12).tolist() == [3, 4, 0, 1, 0]


def test_micro_batches_align_kinds_and_dwell_with_items():
    s = with_behaviours([[0, 1, 2, 3]], [[2, 2, 1, 2]], [[0, 3, 10, 11]], 4)
    src = MicroSource(s, 8, 2, n_dwell=12)  # max_len 2: prefixes front-truncated
    cases = {int(t): i for i, t in enumerate(src.cases)}  # target event -> case position
    b = src.batch(torch.tensor([cases[1], cases[2], cases[3]]))
    assert b.items.tolist() == [[0, 4], [0, 1], [1, 2]]    # 4 = padding
    assert b.kinds.tolist() == [[2, 0], [2, 2], [2, 1]]    # padding gets kind 0
    # dwell of items 0, 1: 3 s -> 3, 7 s -> 4; each row's last item has no known dwell
    assert b.dwell.tolist() == [[0, 0], [3, 0], [4, 0]]
    assert b.targets.tolist() == [1, 2, 3]


def test_behaviour_rows_drop_unknown_items_with_their_behaviours():
    s = with_behaviours([[0, 9, 1, 2]], [[1, 2, 2, 1]], [[0, 1, 3, 6]], 10)
    items, kinds, dwell = behaviour_rows(s, np.array([3]), 3, 50, 12)  # item 9 unknown
    assert items[0].tolist() == [0, 1]
    assert kinds[0].tolist() == [1, 2]
    assert dwell[0].tolist() == [2, 3]  # 1 s -> 2 (event 0), 3 s -> 3 (event 2)


def test_event_type_codes_share_one_vocabulary_across_splits():
    a = pl.DataFrame({"event_type": ["view", "cart", None]})
    b = pl.DataFrame({"event_type": ["purchase", "view"]})
    names = event_type_names((a, b))
    assert names == ("cart", "purchase", "view")
    assert event_type_codes(a["event_type"], names).tolist() == [3, 1, 0]
    assert remap_codes(np.array([0, 1, 2, 3]), names, ("view", "cart")).tolist() == [0, 2, 0, 1]
    other = dataclasses.replace(with_behaviours([[0, 1]], [[1, 1]], [[0, 1]], 2),
                                event_type_names=("fav", "view"))
    with pytest.raises(Exception, match="different behaviour codes"):
        concat_sessions(with_behaviours([[0, 1]], [[1, 1]], [[0, 1]], 2), other)


def _behaviour_task(n_sessions: int, seed: int) -> Sessions:
    """The next item is the last item + 1 after a 'cart' and the last item + 2 after a
    'view' (mod 8): learnable only with the behaviour input."""
    rng = np.random.default_rng(seed)
    sessions, kinds, ts = [], [], []
    for _ in range(n_sessions):
        items, ks = [int(rng.integers(0, 8))], []
        for _ in range(int(rng.integers(1, 5))):
            k = int(rng.integers(1, 3))
            ks.append(k)
            items.append((items[-1] + (1 if k == 1 else 2)) % 8)
        ks.append(int(rng.integers(1, 3)))
        sessions.append(items)
        kinds.append(ks)
        ts.append(list(range(len(items))))
    return with_behaviours(sessions, kinds, ts, 8)


def test_rib_learns_what_only_the_behaviour_tells():
    train, test = _behaviour_task(250, 0), _behaviour_task(60, 1)
    params = {"embedding": 8, "behaviour_dim": 4, "dwell_dim": 0, "hidden": 16,
              "batch_size": 32, "n_epochs": 8, "learning_rate": 0.03, "progress": False}
    rib = get_model_class("rib")(**params).fit(train)
    plain = get_model_class("rib")(**{**params, "behaviour_dim": 0}).fit(train)
    with_b = evaluate(rib, train, test, ks=(1,)).metrics()["recall@1"]
    without = evaluate(plain, train, test, ks=(1,)).metrics()["recall@1"]
    assert with_b > 0.9, with_b
    assert without < 0.75, without  # a coin flip between +1 and +2 without the behaviour
    assert rib.get_params()["behaviours"] == ["cart", "view"]


def test_rib_saves_its_behaviour_names(tmp_path):
    train = _behaviour_task(50, 0)
    rib = get_model_class("rib")(embedding=4, hidden=4, batch_size=8, n_epochs=1,
                                 progress=False).fit(train)
    rib.save(tmp_path / "m")
    again = SessionRecommender.load(tmp_path / "m")
    assert again.params.behaviours == ("cart", "view")
    targets = np.array([1, 2])
    (_, a), = list(rib.score_next(train, targets))
    (_, b), = list(again.score_next(train, targets))
    assert torch.equal(a, b)
