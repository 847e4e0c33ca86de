"""Ranks and metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionrec.evaluation.metrics import (
    metric_values,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    ranks_from_scores,
    recall_at_k,
    top_k,
)

NAN = float("nan")
INF = float("inf")


def ranks(rows: list[list[float]], targets: list[int], ties: str) -> list[float]:
    out = ranks_from_scores(torch.tensor(rows), torch.tensor(targets), ties)
    assert out.dtype == torch.float64
    return out.tolist()


@pytest.mark.parametrize(
    ("ties", "expected"),
    [("pessimistic", [3.0, 1.0, 4.0]), ("optimistic", [2.0, 1.0, 4.0]),
     ("average", [2.5, 1.0, 4.0])],
)
def test_tie_modes(ties: str, expected: list[float]) -> None:
    # Item 2 ties with item 1 below item 0; items 0 and 3 have no ties.
    rows = [[0.9, 0.5, 0.5, 0.1]] * 3
    assert ranks(rows, [2, 0, 3], ties) == expected


def test_all_equal_scores() -> None:
    rows = [[1.0, 1.0, 1.0, 1.0]]
    assert ranks(rows, [0], "pessimistic") == [4.0]
    assert ranks(rows, [0], "optimistic") == [1.0]
    assert ranks(rows, [0], "average") == [2.5]


def test_rows_are_independent() -> None:
    rows = [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]
    assert ranks(rows, [0, 0], "pessimistic") == [3.0, 1.0]


@pytest.mark.parametrize("ties", ["pessimistic", "optimistic", "average"])
def test_nan_never_ranks_above_a_number(ties: str) -> None:
    rows = [[NAN, 0.5, 0.2, NAN]] * 2
    assert ranks(rows, [1, 2], ties) == [1.0, 2.0]
    # NaN ranks below -inf as well.
    assert ranks([[-INF, NAN, 0.1]], [0], ties) == [2.0]


def test_nan_target_ranks_last_and_ties_with_other_nans() -> None:
    rows = [[NAN, 0.5, 0.2, NAN]]
    # Two numbers above; one other NaN tied.
    assert ranks(rows, [0], "optimistic") == [3.0]
    assert ranks(rows, [0], "pessimistic") == [4.0]
    assert ranks(rows, [0], "average") == [3.5]
    assert ranks([[-INF, NAN, 0.1]], [1], "pessimistic") == [3.0]


def test_infinite_scores() -> None:
    rows = [[INF, 1.0, -INF, -INF]]
    assert ranks(rows, [0], "pessimistic") == [1.0]
    assert ranks(rows, [2], "pessimistic") == [4.0]
    assert ranks(rows, [2], "optimistic") == [3.0]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tie mode"):
        ranks_from_scores(torch.zeros(1, 3), torch.zeros(1, dtype=torch.int64), "random")
    with pytest.raises(ValueError, match="need scores"):
        ranks_from_scores(torch.zeros(3), torch.zeros(3, dtype=torch.int64))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=5, max_size=5), min_size=1, max_size=6),
       st.data())
def test_ranks_match_counting_by_hand(rows: list[list[int]], data: st.DataObject) -> None:
    targets = [data.draw(st.integers(0, 4)) for _ in rows]
    pess = ranks([[float(v) for v in r] for r in rows], targets, "pessimistic")
    opt = ranks([[float(v) for v in r] for r in rows], targets, "optimistic")
    for row, t, p, o in zip(rows, targets, pess, opt, strict=True):
        higher = sum(v > row[t] for v in row)
        equal_others = sum(v == row[t] for v in row) - 1
        assert o == 1 + higher
        assert p == 1 + higher + equal_others


def test_top_k_puts_nan_last() -> None:
    values, indices = top_k(torch.tensor([[0.1, NAN, 0.9, 0.5], [NAN, NAN, 0.2, 0.3]]), 3)
    assert indices[0].tolist() == [2, 3, 0]
    assert indices[1, :2].tolist() == [3, 2]
    assert values[0].tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert top_k(torch.zeros(2, 3), 10)[1].shape == (2, 3)  # k clipped


@pytest.mark.parametrize("n_items", [52, 53, 67])
def test_grouped_top_k_equals_plain_top_k(n_items: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import sessionrec.evaluation.metrics as metrics

    monkeypatch.setattr(metrics, "_GROUP", 4)  # 13+ groups > 4 * k: the two-stage path
    gen = torch.Generator().manual_seed(n_items)
    scores = torch.randint(0, 30, (40, n_items), generator=gen).float()  # many ties
    scores[3, 7] = NAN
    scores[5, n_items - 1] = 99.0  # best item in the columns after the last full group
    values, indices = top_k(scores, 3)
    clean = scores.nan_to_num(nan=-INF)
    assert torch.equal(values, torch.topk(clean, 3, dim=1).values)
    assert torch.equal(clean.gather(1, indices), values)
    assert all(len(set(row)) == 3 for row in indices.tolist())
    assert indices[5, 0] == n_items - 1


RANKS = np.array([1.0, 2.0, 3.0, 2.5, 10.0])


def test_recall_and_hitrate() -> None:
    assert recall_at_k(RANKS, 2).tolist() == [1, 1, 0, 0, 0]
    assert recall_at_k(RANKS, 3).tolist() == [1, 1, 1, 1, 0]
    assert metric_values("hitrate@3", RANKS).tolist() == [1, 1, 1, 1, 0]


def test_mrr() -> None:
    assert mrr_at_k(RANKS, 2).tolist() == [1.0, 0.5, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(mrr_at_k(RANKS, 3), [1.0, 0.5, 1 / 3, 0.4, 0.0])
    # Mean over the five predictions: (1 + 1/2 + 1/3 + 1/2.5 + 1/10) / 5.
    assert mrr_at_k(RANKS, 20).mean() == pytest.approx((1 + 0.5 + 1 / 3 + 0.4 + 0.1) / 5)


def test_ndcg() -> None:
    np.testing.assert_allclose(ndcg_at_k(RANKS, 2), [1.0, 1 / math.log2(3), 0, 0, 0])
    np.testing.assert_allclose(
        ndcg_at_k(RANKS, 3), [1.0, 0.6309297535714575, 0.5, 1 / math.log2(3.5), 0.0]
    )


def test_torch_ranks_are_accepted() -> None:
    assert recall_at_k(torch.tensor([1.0, 5.0], dtype=torch.float64), 1).tolist() == [1, 0]


def test_metric_names() -> None:
    assert parse_metric("ndcg@10") == ("ndcg", 10)
    np.testing.assert_array_equal(metric_values("mrr@2", RANKS), mrr_at_k(RANKS, 2))
    for bad in ("mrr", "mrr@0", "map@10", "mrr@x"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse_metric(bad)
    with pytest.raises(ValueError, match="at least 1"):
        recall_at_k(RANKS, 0)
