"""Multi-step training of GRU4Rec/HGRU4Rec (bptt windows, gradient clipping)."""

from __future__ import annotations

import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluation import evaluate
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.models.unroll import clip_total_norm
from sessionrec.training.optim import RowOptimizer
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


@pytest.mark.parametrize(("bptt", "updates"), [(1, 5), (2, 3), (3, 2), (5, 1)])
def test_one_update_per_window(monkeypatch, bptt, updates):
    # Sessions of 4 and 3 clicks in one lane: 3 + 2 = 5 walk steps; windows of bptt steps.
    train = Sessions.from_lists([[0, 1, 2, 3], [4, 5, 6]], 8)
    calls = []
    original = RowOptimizer.step_dense

    def counting(self, key, grad):
        if key == "w_hh0":
            calls.append(key)
        original(self, key, grad)

    monkeypatch.setattr(RowOptimizer, "step_dense", counting)
    small(batch_size=1, bptt=bptt).fit(train)
    assert len(calls) == updates


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


@pytest.mark.parametrize(("key", "value"), [("bptt", 0), ("grad_clip", -1.0)])
def test_bad_unroll_parameters_are_named(key, value):
    with pytest.raises(ConfigError, match=key):
        small(**{key: value})
