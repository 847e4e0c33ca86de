"""GRU4Rec's network module and the row gather of its training step, by hand."""

from __future__ import annotations

import pytest
import torch

from sessionrec.models.item_rows import OutputLoss, distinct_rows, gather_rows, output_log_q
from sessionrec.models.neural.gru4rec_net import GRU4RecNet, HGRU4RecNet
from sessionrec.training import kernels
from sessionrec.training.losses import get_loss
from sessionrec.training.optim import RowOptimizer
from sessionrec.training.row_parallel import RowUpdates


@pytest.mark.parametrize(("mode", "names"), [
    ("constrained", ["Wy", "By", "w_ih0", "w_hh0", "b_ih0", "b_hh0"]),
    ("embedding", ["Wy", "By", "E", "w_ih0", "w_hh0", "b_ih0", "b_hh0"]),
    ("onehot", ["Wy", "By", "Wx0", "Wrz0", "Wh0", "Bh0"]),
])
def test_parameter_names_are_the_saved_files(mode, names):
    net = GRU4RecNet(5, [4], mode, embedding=3)
    assert [n for n, _ in net.named_parameters()] == names
    assert net.dense_names() == [n for n in names if n not in ("Wy", "By", "E", "Wx0")]
    assert not net.Wy.requires_grad and not net.By.requires_grad  # updated by rows


def test_hgru4rec_net_adds_the_user_level_after_the_session_level():
    net = HGRU4RecNet(5, [4], [3], "constrained", propagate_all=True, user_to_output=True)
    names = [n for n, _ in net.named_parameters()]
    assert names == ["Wy", "By", "w_ih0", "w_hh0", "b_ih0", "b_hh0", "u_w_ih0", "u_w_hh0",
                     "u_b_ih0", "u_b_hh0", "Winit", "Binit"]
    assert net.Wy.shape == (5, 4 + 3)  # the user state joins the output layer's input
    assert net.w_ih0.shape == (12, 7 + 3)  # and every step's input


def test_a_step_is_torchs_gru_cell():
    torch.manual_seed(0)
    net = GRU4RecNet(6, [4], "embedding", embedding=3)
    net.reset_parameters(torch.Generator().manual_seed(1))
    cell = torch.nn.GRUCell(3, 4)
    with torch.no_grad():
        for a, b in (("weight_ih", "w_ih0"), ("weight_hh", "w_hh0"), ("bias_ih", "b_ih0"),
                     ("bias_hh", "b_hh0")):
            getattr(cell, a).copy_(net.get_parameter(b))
    items, h = torch.tensor([2, 5]), torch.randn(2, 4)
    out, new = net(net.input_rows(items), [h])
    torch.testing.assert_close(out, cell(net.E[items], h))
    assert new[0] is out
    torch.testing.assert_close(net.scores(out), out @ net.Wy.t() + net.By.view(1, -1))


def test_dropout_only_in_train_mode():
    net = GRU4RecNet(6, [4], "constrained", dropout_p_hidden=0.5)
    net.reset_parameters(torch.Generator().manual_seed(1))
    x, h = net.input_rows(torch.tensor([1, 2])), [torch.zeros(2, 4)]
    a, b = net.eval()(x, h)[0], net(x, h)[0]
    assert torch.equal(a, b)
    torch.manual_seed(0)
    dropped = net.train()(x, h)[0]
    assert bool(((dropped == 0) | torch.isclose(dropped, 2 * a)).all())


def test_constrained_rows_are_gathered_once_and_input_only_bias_rows_stay():
    # 4 items, Wy rows = item index, no momentum, lr 1: a gradient of 1 moves a fresh row by
    # -1 / sqrt(1 + 1e-6).
    net = GRU4RecNet(4, [2], "constrained")
    with torch.no_grad():
        net.Wy.copy_(torch.arange(4.0).unsqueeze(1).repeat(1, 2))
    rows = gather_rows(net, torch.tensor([3, 0]), torch.tensor([0, 1, 1]), train_input=True)
    assert rows.rows.tolist() == [0, 1, 3]
    assert rows.x_in.tolist() == [[3.0, 3.0], [0.0, 0.0]]
    assert rows.out_idx.tolist() == [0, 1, 1]
    assert len(rows.leaves()) == 3  # Wy, By rows and the input rows (Wy rows too)
    assert rows.x_pos.tolist() == [2, 0]  # the input rows are rows 3 and 0 of Wy
    opt = RowOptimizer(dict(net.named_parameters()), "adagrad", lr=1.0)
    RowUpdates(opt, net.dense_names(), ["Wy", "By"]).apply(
        rows.row_updates([torch.ones(3, 2), torch.ones(3, 1)]))
    step = 1.0 / (1.0 + 1e-6) ** 0.5
    torch.testing.assert_close(net.Wy[:, 0], torch.tensor([-step, 1 - step, 2.0, 3 - step]))
    # item 3 is only an input: its bias row gets no update
    torch.testing.assert_close(net.By[:, 0], torch.tensor([-step, -step, 0.0, 0.0]))


def test_a_frozen_input_table_is_neither_differentiated_nor_updated():
    net = GRU4RecNet(4, [2], "embedding", embedding=3)
    rows = gather_rows(net, torch.tensor([2, 2]), torch.tensor([1]), train_input=False)
    assert rows.input_rows.tolist() == [2] and rows.rows.tolist() == [1]
    assert not rows.input_leaf.requires_grad and len(rows.leaves()) == 2
    trained = gather_rows(net, torch.tensor([2, 2]), torch.tensor([1]), train_input=True)
    assert len(trained.leaves()) == 3 and trained.leaves()[2] is trained.input_leaf


def test_log_q_of_targets_and_samples():
    log_counts = torch.tensor([0.0, 1.0, 2.0, 3.0])
    # two targets (items 3, 1), one sample (item 2) drawn with alpha 0.5
    got = output_log_q(log_counts, torch.tensor([3, 1, 2]), 2, 0.5)
    assert got.tolist() == [3.0, 1.0, 1.0]
    assert output_log_q(log_counts, torch.tensor([3, 1]), 2, 0.5).tolist() == [3.0, 1.0]


@pytest.mark.parametrize("mode", ["constrained", "embedding"])
@pytest.mark.parametrize(("loss", "logq"), [("cross-entropy", 0.0), ("cross-entropy", 1.0),
                                            ("bpr-max", 0.0)])
def test_the_step_loss_and_row_gradients_equal_those_of_the_whole_tables(mode, loss, logq):
    # Samples repeat (a catalogue of 6 items, 12 samples): the loss is computed on the
    # distinct rows (scores once per row; cross-entropy: repeats merged) and the input rows
    # are a leaf of their own. Loss and row gradients must equal those of the plain
    # computation on whole tables: every column's row gathered, the [m, m + S] layout.
    torch.manual_seed(0)
    net = GRU4RecNet(6, [3], mode, embedding=3)
    net.reset_parameters(torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.By.normal_()
    x, y = torch.tensor([4, 0, 4]), torch.tensor([1, 2, 1])
    samples = torch.tensor([1, 1, 5, 2, 5, 5, 3, 1, 0, 5, 2, 2])
    y_all = torch.cat([y, samples])
    log_counts = torch.log(torch.tensor([3.0, 5.0, 2.0, 1.0, 4.0, 6.0]))
    mix = torch.randn(3, 3)
    output_loss = OutputLoss(get_loss(loss, logq=logq), log_counts, 0.5,
                             loss == "cross-entropy", logq)
    rows = gather_rows(net, x, y_all, train_input=True)
    assert len(rows.rows) < len(y_all)  # the merged path is taken
    got = output_loss(rows, torch.tanh(rows.x_in @ mix), rows.out_idx, y_all, 3)
    got.backward()
    # the reference, on whole-table leaves
    w = net.Wy.detach().clone().requires_grad_(True)
    b = net.By.detach().clone().requires_grad_(True)
    e = w if mode == "constrained" else net.E.detach().clone().requires_grad_(True)
    out = torch.tanh(e[x] @ mix)
    scores = torch.addmm(b[y_all].view(1, -1), out, w[y_all].t())
    log_q = output_log_q(log_counts, y_all, 3, 0.5) if logq else None
    want = get_loss(loss, logq=logq)(scores, log_q)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    grads = rows.grads()
    torch.testing.assert_close(grads[0], w.grad[rows.rows], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], b.grad[rows.rows], rtol=1e-5, atol=1e-6)
    if mode == "embedding":
        torch.testing.assert_close(grads[2], e.grad[rows.input_rows], rtol=1e-5, atol=1e-6)
    else:
        assert len(grads) == 2 and grads[0][rows.x_pos[0]].abs().sum() > 0  # input rows


@pytest.mark.parametrize("compiled", [True, False])
def test_distinct_rows_put_the_output_items_first(compiled, monkeypatch):
    if not compiled:  # the torch path, taken where Numba is missing
        monkeypatch.setattr(kernels, "unique_first_seen", lambda *a: None)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        outputs = torch.randint(0, 9, (int(torch.randint(1, 12, (1,), generator=gen)),),
                                generator=gen)
        inputs = torch.randint(0, 9, (5,), generator=gen)
        rows, inverse, n_out = distinct_rows(outputs, inputs, 9)
        assert len(set(rows.tolist())) == len(rows)  # distinct
        assert torch.equal(rows[inverse], torch.cat([outputs, inputs]))
        assert set(rows[:n_out].tolist()) == set(outputs.tolist())
        assert not set(rows[n_out:].tolist()) & set(outputs.tolist())
    if compiled:  # in the order first seen
        rows, inverse, n_out = distinct_rows(torch.tensor([5, 2, 5]), torch.tensor([7, 2]), 9)
        assert rows.tolist() == [5, 2, 7] and inverse.tolist() == [0, 1, 0, 2, 1] and n_out == 2
        with pytest.raises(ValueError, match=r"item index 9 outside the catalogue \[0, 9\)"):
            distinct_rows(torch.tensor([1, 9]), None, 9)
        # the lookup table is left clean after the refusal
        assert distinct_rows(torch.tensor([3, 1]), None, 9)[0].tolist() == [3, 1]


def test_dropout_keeps_one_minus_p_scaled_up_and_only_while_training():
    net = GRU4RecNet(3, [2], "constrained", dropout_p_hidden=0.4)
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    dropped = net._dropout(x, 0.4)
    kept = dropped != 0
    assert abs(kept.float().mean().item() - 0.6) < 0.005  # 100,000 draws: sd 0.0015
    torch.testing.assert_close(dropped[kept], torch.full((int(kept.sum()),), 1 / 0.6))
    net.eval()
    assert net._dropout(x, 0.4) is x
