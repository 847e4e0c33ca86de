"""Row and dense optimiser steps against hand-computed updates."""

import math

import pytest
import torch

from sessionrec.training import kernels
from sessionrec.training.optim import RowOptimizer


def test_adagrad_momentum_rows_hand_computed():
    w = torch.zeros((3, 2))
    opt = RowOptimizer({"W": w}, "adagrad", lr=0.1, momentum=0.5, eps=1e-6)
    g = torch.tensor([[1.0, 2.0]])
    opt.step_rows("W", torch.tensor([1]), g)
    # acc = g², m = -lr g / sqrt(acc + eps), w += m
    m1 = [-0.1 * 1 / math.sqrt(1 + 1e-6), -0.1 * 2 / math.sqrt(4 + 1e-6)]
    assert w[1].tolist() == pytest.approx(m1)
    assert w[0].tolist() == [0.0, 0.0] and w[2].tolist() == [0.0, 0.0]
    opt.step_rows("W", torch.tensor([1]), g)
    # acc = 2 g², m = 0.5 m1 - lr g / sqrt(2 g² + eps)
    m2 = [0.5 * m1[0] - 0.1 / math.sqrt(2 + 1e-6), 0.5 * m1[1] - 0.2 / math.sqrt(8 + 1e-6)]
    assert w[1].tolist() == pytest.approx([m1[0] + m2[0], m1[1] + m2[1]])


def test_rows_untouched_keep_state():
    w = torch.zeros((3, 1))
    opt = RowOptimizer({"W": w}, "adagrad", lr=1.0, momentum=0.9)
    opt.step_rows("W", torch.tensor([0]), torch.tensor([[1.0]]))
    before = w.clone()
    opt.step_rows("W", torch.tensor([2]), torch.tensor([[1.0]]))
    assert w[0].item() == before[0].item()  # no momentum applied to rows outside the step


def test_dense_matches_rows_when_all_rows_step():
    a, b = torch.ones((2, 3)), torch.ones((2, 3))
    oa = RowOptimizer({"W": a}, "adagrad", lr=0.05, momentum=0.3)
    ob = RowOptimizer({"W": b}, "adagrad", lr=0.05, momentum=0.3)
    for g in (torch.full((2, 3), 0.5), torch.full((2, 3), -1.0)):
        oa.step_dense("W", g)
        ob.step_rows("W", torch.tensor([0, 1]), g)
    assert torch.allclose(a, b)


def test_adam_matches_torch_adam():
    p_ref = torch.nn.Parameter(torch.tensor([[0.5, -0.5]]))
    ref = torch.optim.Adam([p_ref], lr=0.01)
    w = torch.tensor([[0.5, -0.5]])
    opt = RowOptimizer({"W": w}, "adam", lr=0.01)
    for g in ([1.0, 2.0], [-0.5, 0.1], [0.3, 0.3]):
        p_ref.grad = torch.tensor([g])
        ref.step()
        opt.step_rows("W", torch.tensor([0]), torch.tensor([g]))
    assert torch.allclose(w, p_ref.detach(), atol=1e-6)


def test_state_dict_round_trip():
    w = torch.zeros((2, 2))
    opt = RowOptimizer({"W": w}, "adagrad", lr=0.1, momentum=0.2)
    opt.step_rows("W", torch.tensor([0]), torch.ones((1, 2)))
    state = {k: v.clone() for k, v in opt.state_dict().items()}
    other = RowOptimizer({"W": torch.zeros((2, 2))}, "adagrad", lr=0.1, momentum=0.2)
    other.load_state_dict(state)
    assert torch.equal(other.state_dict()["W.acc"], opt.state_dict()["W.acc"])
    assert not torch.equal(other.state_dict()["W.acc"], torch.zeros((2, 2)))


def test_bad_settings():
    with pytest.raises(ValueError, match="valid optimizers: adagrad, adam"):
        RowOptimizer({}, "sgd")
    with pytest.raises(ValueError, match="momentum"):
        RowOptimizer({}, "adagrad", momentum=1.5)


def test_step_updates_the_parameters_with_a_grad_and_zero_grad_clears_them():
    # adagrad, lr 0.1, no momentum: w -= 0.1 g / sqrt(g² + 1e-6) ≈ -0.1 sign(g)
    w = torch.zeros(2, requires_grad=True)
    untouched = torch.ones(2, requires_grad=True)
    opt = RowOptimizer({"w": w, "u": untouched}, "adagrad", lr=0.1)
    (w * torch.tensor([1.0, -2.0])).sum().backward()
    opt.step()
    assert w.tolist() == pytest.approx([-0.1 / math.sqrt(1 + 1e-6), 0.2 / math.sqrt(4 + 1e-6)])
    assert untouched.tolist() == [1.0, 1.0] and untouched.grad is None
    opt.zero_grad()
    assert w.grad is None


@pytest.mark.parametrize("momentum", [0.0, 0.3])
def test_compiled_adagrad_equals_the_torch_operations(momentum):
    assert kernels.available(), "numba is a dependency: pip install -e ."
    # The same updates through the compiled kernels and through torch operations: equal up
    # to the last bit of a square root (torch's vectorised sqrt is not correctly rounded).
    gen = torch.Generator().manual_seed(0)
    runs = {}
    for fused in (True, False):
        table = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
        dense = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
        dense.requires_grad_(True)
        opt = RowOptimizer({"T": table, "D": dense}, "adagrad", lr=0.1, momentum=momentum,
                           fused=fused)
        assert opt.fused is fused
        gen.manual_seed(3)
        for _ in range(5):
            rows = torch.randperm(7, generator=gen)[:4].sort().values
            opt.step_rows("T", rows, torch.randn(4, 3, generator=gen))
            dense.grad = torch.randn(4, 2, generator=gen)
            opt.step()
            opt.zero_grad()
        runs[fused] = (table, dense.detach(), opt.state_dict())
    (t1, d1, s1), (t0, d0, s0) = runs[True], runs[False]
    torch.testing.assert_close(t1, t0, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(d1, d0, rtol=1e-6, atol=1e-7)
    assert s1.keys() == s0.keys()
    for k in s1:
        torch.testing.assert_close(s1[k], s0[k], rtol=1e-6, atol=1e-7)


def test_compiled_adagrad_hand_computed_and_leaves_other_rows_alone():
    w = torch.zeros((3, 2))
    opt = RowOptimizer({"W": w}, "adagrad", lr=0.1, momentum=0.5, eps=1e-6, fused=True)
    opt.step_rows("W", torch.tensor([1]), torch.tensor([[1.0, 2.0]]))
    m1 = [-0.1 * 1 / math.sqrt(1 + 1e-6), -0.1 * 2 / math.sqrt(4 + 1e-6)]
    assert w[1].tolist() == pytest.approx(m1)
    assert w[0].tolist() == [0.0, 0.0] and w[2].tolist() == [0.0, 0.0]
    assert opt.state["W"]["acc"][1].tolist() == [1.0, 4.0]


def test_compiled_adagrad_follows_a_parameter_whose_storage_was_replaced():
    w = torch.zeros((2, 1))
    params = {"W": w}
    opt = RowOptimizer(params, "adagrad", lr=1.0, fused=True)
    opt.step_rows("W", torch.tensor([0]), torch.ones(1, 1))
    params["W"] = replaced = torch.zeros((2, 1))  # e.g. a model moved and back
    opt.step_rows("W", torch.tensor([1]), torch.ones(1, 1))
    assert replaced[1].item() < 0 and replaced[0].item() == 0.0  # the new tensor got it
    assert w[1].item() == 0.0


def test_without_numba_the_torch_path_runs(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda: False)
    w = torch.zeros((2, 1))
    opt = RowOptimizer({"W": w}, "adagrad", lr=1.0)
    assert not opt.fused
    opt.step_rows("W", torch.tensor([0]), torch.ones(1, 1))
    assert w[0].item() == pytest.approx(-1.0 / math.sqrt(1 + 1e-6))
