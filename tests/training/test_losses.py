"""Losses against values computed by hand from their definitions."""

import math

import pytest
import torch

from sessionrec.training.losses import LOSSES, cross_entropy_rows, get_loss

# Two lanes, one shared sample: columns = [target of lane 0, target of lane 1, sample].
S = torch.tensor([[2.0, 0.0, 1.0],
                  [1.0, 3.0, -1.0]])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_cross_entropy():
    expected = 0.0
    for i, row in enumerate(S.tolist()):
        expected -= row[i] - math.log(sum(math.exp(v) for v in row))
    assert get_loss("cross-entropy")(S, None).item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_logq():
    log_q = torch.tensor([math.log(2.0), math.log(1.0), 0.5 * math.log(4.0)])
    corrected = S - log_q
    expected = 0.0
    for i, row in enumerate(corrected.tolist()):
        expected -= row[i] - math.log(sum(math.exp(v) for v in row))
    got = get_loss("cross-entropy", logq=1.0)(S, log_q).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # logq = 0 ignores the correction.
    assert get_loss("cross-entropy", logq=0.0)(S, log_q).item() == pytest.approx(
        get_loss("cross-entropy")(S, None).item())


def negatives(i):
    return [v for j, v in enumerate(S[i].tolist()) if j != i]


def softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_bpr_and_top1():
    bpr = top1 = 0.0
    for i in range(2):
        t, neg = S[i, i].item(), negatives(i)
        bpr += sum(-math.log(sig(t - r)) for r in neg) / len(neg)
        top1 += sum(sig(r - t) + sig(r * r) for r in neg) / len(neg)
    assert get_loss("bpr")(S, None).item() == pytest.approx(bpr, rel=1e-6)
    assert get_loss("top1")(S, None).item() == pytest.approx(top1, rel=1e-6)


def test_top1_max():
    expected = 0.0
    for i in range(2):
        t, neg = S[i, i].item(), negatives(i)
        w = softmax(neg)
        expected += sum(wj * (sig(r - t) + sig(r * r)) for wj, r in zip(w, neg, strict=True))
    assert get_loss("top1-max")(S, None).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("bpreg", "elu"), [(0.0, 0.0), (1.95, 0.0), (1.0, 0.5)])
def test_bpr_max(bpreg, elu):
    def f(x):
        return x if (elu == 0 or x > 0) else elu * (math.exp(x) - 1)

    expected = 0.0
    for i in range(2):
        t = f(S[i, i].item())
        neg = [f(r) for r in negatives(i)]
        w = softmax(neg)
        expected += -math.log(sum(wj * sig(t - r) for wj, r in zip(w, neg, strict=True)))
        expected += bpreg * sum(wj * r * r for wj, r in zip(w, neg, strict=True))
    got = get_loss("bpr-max", bpreg=bpreg, elu_param=elu)(S, None).item()
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_prefer_high_target_scores(name):
    good = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0]])
    bad = -good
    loss = get_loss(name, bpreg=0.0)
    assert loss(good, None).item() < loss(bad, None).item()


def test_unknown_loss_lists_choices():
    with pytest.raises(ValueError, match="valid losses: cross-entropy, bpr-max"):
        get_loss("hinge")


def test_cross_entropy_with_repeated_samples_merged_equals_the_full_layout():
    # Two lanes (targets: items 0 and 2), four samples: item 1 twice, item 2 once, item 3 once.
    # Distinct rows [0, 1, 2, 3]; every lane scored once against each row.
    row_scores = torch.tensor([[2.0, 0.5, -1.0, 0.3],
                               [0.1, 1.5, 3.0, -2.0]])
    target_cols = torch.tensor([0, 2])
    samples = [1, 1, 2, 3]
    full = row_scores[:, [0, 2, *samples]]  # the [M, M + S] layout, repeats and all
    mult = torch.tensor([0.0, 2.0, 1.0, 1.0])  # samples per row (row 0: none)
    got = cross_entropy_rows(row_scores, target_cols, mult.log())
    assert got.item() == pytest.approx(get_loss("cross-entropy")(full, None).item(), rel=1e-6)
    # with the log-Q correction: targets by their count, samples by alpha x their count
    log_counts = torch.tensor([1.0, 2.0, 0.5, 0.0])
    log_q_full = torch.cat([log_counts[[0, 2]], 0.5 * log_counts[samples]])
    want = get_loss("cross-entropy", logq=1.0)(full, log_q_full).item()
    got = cross_entropy_rows(row_scores, target_cols, mult.log(), log_counts, 0.5, 1.0)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # and the gradient with respect to the scores is the same, row by row
    s = row_scores.clone().requires_grad_(True)
    cross_entropy_rows(s, target_cols, mult.log()).backward()
    f = row_scores.clone().requires_grad_(True)
    get_loss("cross-entropy")(f[:, [0, 2, *samples]], None).backward()
    torch.testing.assert_close(s.grad, f.grad)
