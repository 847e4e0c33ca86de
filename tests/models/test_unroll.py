"""Multi-step training of GRU4Rec/HGRU4Rec (bptt windows, gradient clipping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.batching.session_parallel import session_groups
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluation import evaluate
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.models.professor import lanes_through
from sessionrec.models.unroll import WalkStep
from sessionrec.training.optim import RowOptimizer, clip_total_norm
from tests.models.cyclic import cyclic


def small(cls=GRU4Rec, **kw):
    params = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 1,
              "learning_rate": 0.1, "progress": False}
    if cls is HGRU4Rec:
        params["user_layers"] = [8]
    params.update(kw)
    return cls(**params)


@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
@pytest.mark.parametrize("extra", [{}, {"constrained_embedding": False}])
def test_one_step_window_equals_the_default_path_bit_for_bit(cls, extra):
    # grad_clip far above any norm sends training through the window path without changing
    # a gradient: one-step windows must compute exactly what the default path computes.
    train = cyclic(60, 0)
    a = small(cls, **extra).fit(train)
    b = small(cls, grad_clip=1e9, **extra).fit(train)
    assert b.unrolled and not a.unrolled
    for k, v in a.net_.state_dict().items():
        assert torch.equal(v, b.net_.state_dict()[k]), k


@pytest.fixture
def updates(monkeypatch) -> list[str]:
    """Grows by one entry per optimiser update (a ``step()`` with the GRU's ``w_hh0``)."""
    calls: list[str] = []
    original = RowOptimizer.step

    def counting(self):
        if self.params["w_hh0"].grad is not None:
            calls.append("w_hh0")
        original(self)

    monkeypatch.setattr(RowOptimizer, "step", counting)
    return calls


@pytest.mark.parametrize(("bptt", "n_updates"), [(1, 5), (2, 3), (3, 2), (5, 1)])
def test_one_update_per_window(updates, bptt, n_updates):
    # Sessions of 4 and 3 clicks in one lane: 3 + 2 = 5 walk steps; windows of bptt steps.
    train = Sessions.from_lists([[0, 1, 2, 3], [4, 5, 6]], 8)
    small(batch_size=1, bptt=bptt).fit(train)
    assert len(updates) == n_updates


def test_multi_step_training_learns():
    train, test = cyclic(200, 0), cyclic(40, 1)
    model = small(bptt=4, grad_clip=5.0, n_epochs=3).fit(train)
    assert evaluate(model, train, test, ks=(20,)).metrics()["mrr@20"] > 0.6


def test_clip_total_norm_by_hand():
    # norm of (3, 4) and (0, 0, 12) is sqrt(9 + 16 + 144) = 13; clipped to 6.5: halved.
    grads = [torch.tensor([3.0, 4.0]), None, torch.tensor([0.0, 0.0, 12.0])]
    assert clip_total_norm(grads, 6.5) == pytest.approx(13.0)
    assert torch.allclose(grads[0], torch.tensor([1.5, 2.0]), atol=1e-5)
    assert torch.allclose(grads[2], torch.tensor([0.0, 0.0, 6.0]), atol=1e-5)
    unchanged = [torch.tensor([3.0, 4.0])]
    assert clip_total_norm(unchanged, 0.0) == pytest.approx(5.0)  # 0: no clipping
    assert torch.equal(unchanged[0], torch.tensor([3.0, 4.0]))


@pytest.mark.parametrize(("key", "value"), [("bptt", -1), ("grad_clip", -1.0)])
def test_bad_unroll_parameters_are_named(key, value):
    with pytest.raises(ConfigError, match=key):
        small(**{key: value})


# -- whole-session unrolling (bptt = 0) --------------------------------------------------------

def test_session_groups_sort_each_chunk_by_length():
    # lengths 3, 2, 4, 2, 5, 2; chunks of bucket x batch = 4 sessions, sorted by length
    # (stable), cut into groups of 2: [1, 3] (2, 2), [0, 2] (3, 4); then [5, 4] (2, 5).
    offsets = np.array([0, 3, 5, 9, 11, 16, 18])
    groups = [g.tolist() for g in session_groups(offsets, np.arange(6), 2, bucket=2)]
    assert groups == [[1, 3], [0, 2], [5, 4]]
    with pytest.raises(ValueError, match="batch_size"):
        list(session_groups(offsets, np.arange(6), 0))


def test_whole_sessions_equal_a_window_of_the_session_length():
    # Four sessions of 4 clicks in 2 lanes: the walk starts and ends both lanes together, so
    # bptt = 3 windows are exactly whole sessions, bit for bit.
    train = Sessions.from_lists([[0, 1, 2, 3], [4, 5, 6, 7], [1, 2, 3, 4], [5, 6, 7, 0]], 8)
    a = small(batch_size=2, n_sample=4, n_epochs=2, bptt=0).fit(train)
    b = small(batch_size=2, n_sample=4, n_epochs=2, bptt=3).fit(train)
    assert a.unrolled
    for k, v in a.net_.state_dict().items():
        assert torch.equal(v, b.net_.state_dict()[k]), k


def test_whole_sessions_make_one_update_per_group(updates):
    # Sessions of 4, 3 and 2 clicks, one lane: three groups (one session each), so three
    # updates; two lanes: groups [2-click, 3-click] and [4-click] after sorting, two updates.
    train = Sessions.from_lists([[0, 1, 2, 3], [4, 5, 6], [1, 2]], 8)
    small(batch_size=1, bptt=0).fit(train)
    assert len(updates) == 3
    updates.clear()
    small(batch_size=2, bptt=0).fit(train)
    assert len(updates) == 2


def test_whole_session_training_learns():
    train, test = cyclic(200, 0), cyclic(40, 1)
    model = small(bptt=0, grad_clip=5.0, n_epochs=3).fit(train)
    assert evaluate(model, train, test, ks=(20,)).metrics()["mrr@20"] > 0.6


def test_whole_sessions_are_refused_for_hgru4rec():
    with pytest.raises(ConfigError, match="bptt = 0"):
        small(HGRU4Rec, bptt=0)


def test_professor_forcing_on_whole_sessions_needs_an_explicit_rollout():
    with pytest.raises(ConfigError, match="pf_rollout"):
        small(bptt=0, pf_weight=1.0)
    model = small(bptt=0, pf_weight=1.0, pf_rollout=3, n_epochs=1).fit(cyclic(60, 0))
    assert model.fit_stats_["professor_forcing"][0]["pf_windows"] > 0


def _step(n: int, starts: list[bool], keep: list[int] | None) -> WalkStep:
    return WalkStep(torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64),
                    lambda state, x: None, np.array(starts),
                    None if keep is None else torch.tensor(keep))


def test_lanes_through_follow_lanes_across_drops_and_starts():
    # 4 lanes; step 2 drops lane 1 (lanes 2, 3 move to 1, 2); step 3 starts a new session in
    # its lane 2 (the original lane 3). Lanes 0 and 2 stay: positions [0, 2] -> [0, 1] -> [0, 1].
    steps = [_step(4, [True] * 4, None), _step(3, [False] * 3, [0, 2, 3]),
             _step(3, [False, False, True], None)]
    positions = lanes_through(steps)
    assert [p.tolist() for p in positions] == [[0, 2], [0, 1], [0, 1]]
    # Every lane leaves: None.
    assert lanes_through([_step(2, [True, True], None), _step(2, [True, True], None)]) is None
    assert lanes_through([_step(2, [True, True], None), _step(0, [], [])]) is None
