"""Sparse ranks and top-k equal the dense evaluator's, on random ties, NaN and -inf included.

``reference_ranks`` below is the evaluator as it was before sparse scores (dense rows through
``ranks_from_scores``), kept here as the reference; ``naive_ranks`` counts by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.evaluation import evaluate
from sessionrec.evaluation.metrics import TIE_MODES, ranks_from_scores, top_k
from sessionrec.evaluation.sparse_ranks import sparse_ranks, sparse_top_k
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.models.scores import SparseScores

NAN = float("nan")


def naive_ranks(dense: np.ndarray, targets: np.ndarray, ties: str) -> np.ndarray:
    """Rank by counting, one row at a time (the module docstring of metrics, literally)."""
    out = []
    share = {"pessimistic": 1.0, "optimistic": 0.0, "average": 0.5}[ties]
    for row, t in zip(dense, targets, strict=True):
        s = row[t]
        if math.isnan(s):
            n_nan = int(np.isnan(row).sum())
            out.append(len(row) - n_nan + 1 + share * (n_nan - 1))
            continue
        higher = int((row > s).sum())
        tied = int((row == s).sum()) - 1
        out.append(higher + 1 + share * tied)
    return np.array(out)


def reference_ranks(dense: torch.Tensor, targets: np.ndarray, ties: str) -> np.ndarray:
    """The pre-sparse evaluator's path: dense rows through ranks_from_scores."""
    return ranks_from_scores(dense, torch.from_numpy(targets), ties).numpy()


def random_scores(rng: np.random.Generator, rows: int, n_items: int,
                  vector_fill: bool) -> SparseScores:
    """Few distinct values so that ties are everywhere; some NaN and -inf entries."""
    palette = np.array([0.0, 0.25, 0.5, 1.0, -np.inf, NAN], dtype=np.float32)
    lengths = rng.integers(0, n_items + 1, rows)
    lengths[rng.random(rows) < 0.3] = 0
    indices = np.concatenate([np.sort(rng.choice(n_items, m, replace=False)) for m in lengths])
    values = rng.choice(palette, len(indices), p=[0.3, 0.2, 0.2, 0.2, 0.05, 0.05])
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    if vector_fill:
        fill = torch.from_numpy(rng.choice(palette[:4], n_items).astype(np.float32))
        if rng.random() < 0.5:
            fill[rng.integers(n_items)] = NAN
    else:
        fill = float(rng.choice([0.0, 0.25]))
    return SparseScores(fill, indptr.astype(np.int64), indices.astype(np.int64),
                        values.astype(np.float32), n_items)


def test_hand_computed_ranks() -> None:
    # Row 0: fill 0 except item 1 = 2.0 and item 3 = 0.5 over 5 items -> [0, 2, 0, .5, 0].
    # Row 1: only the fill -> [0, 0, 0, 0, 0].
    scores = SparseScores(0.0, np.array([0, 2, 2]), np.array([1, 3]),
                          np.array([2.0, 0.5], dtype=np.float32), 5)
    targets = np.array([0, 4])
    # target 0 in row 0: 2 higher, 2 other zeros tied; row 1: 4 others tied
    assert sparse_ranks(scores, targets, "pessimistic").tolist() == [5.0, 5.0]
    assert sparse_ranks(scores, targets, "optimistic").tolist() == [3.0, 1.0]
    assert sparse_ranks(scores, targets, "average").tolist() == [4.0, 3.0]
    assert sparse_ranks(scores, np.array([3, 0]), "pessimistic").tolist() == [2.0, 5.0]
    assert sparse_top_k(scores, 2)[0].tolist() == [1, 3]


def test_vector_fill_hand_computed() -> None:
    # fill [3, 1, 2, 2]; row 0 overrides item 0 with 0 -> [0, 1, 2, 2]
    fill = torch.tensor([3.0, 1.0, 2.0, 2.0])
    scores = SparseScores(fill, np.array([0, 1, 1]), np.array([0]),
                          np.array([0.0], dtype=np.float32), 4)
    assert sparse_ranks(scores, np.array([1, 1]), "pessimistic").tolist() == [3.0, 4.0]
    assert sparse_ranks(scores, np.array([2, 2]), "optimistic").tolist() == [1.0, 2.0]
    assert sparse_top_k(scores, 1)[:, 0].tolist() in ([2, 0], [3, 0])


@pytest.mark.parametrize("vector_fill", [False, True])
@pytest.mark.parametrize("ties", TIE_MODES)
def test_random_ties_equal_the_dense_evaluator(ties: str, vector_fill: bool) -> None:
    rng = np.random.default_rng(7 + vector_fill)
    for _ in range(20):
        n_items = int(rng.integers(1, 40))
        scores = random_scores(rng, int(rng.integers(1, 30)), n_items, vector_fill)
        dense = scores.dense()
        targets = rng.integers(0, n_items, scores.rows)
        got = sparse_ranks(scores, targets, ties)
        np.testing.assert_array_equal(got, reference_ranks(dense, targets, ties))
        np.testing.assert_array_equal(got, naive_ranks(dense.numpy(), targets, ties))


@pytest.mark.parametrize("vector_fill", [False, True])
def test_random_top_k_holds_the_dense_top_values(vector_fill: bool) -> None:
    rng = np.random.default_rng(11 + vector_fill)
    for _ in range(20):
        n_items = int(rng.integers(1, 60))
        scores = random_scores(rng, int(rng.integers(1, 30)), n_items, vector_fill)
        dense = scores.dense()
        for k in (1, 3, 20, 100):
            top = sparse_top_k(scores, k)
            want_values, _ = top_k(dense, k)
            assert top.shape == tuple(want_values.shape)
            assert all(len(set(row)) == len(row) for row in top.tolist())  # no repeats
            got_values = torch.gather(dense, 1, torch.from_numpy(top))
            # ties may pick other items, never other values (NaN last, as -inf)
            torch.testing.assert_close(as_last(got_values), as_last(want_values))


def as_last(values: torch.Tensor) -> torch.Tensor:
    """NaN as -inf: both come last in a top-k list, in either order."""
    return torch.where(values.isnan(), -math.inf, values)


class DenseOnly(SessionRecommender):
    """Wraps a fitted model and hides its sparse scores: the evaluator's dense path."""

    name = "test-dense-only"

    def __init__(self, inner: SessionRecommender) -> None:
        super().__init__()
        self.inner = inner

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        pass

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        return self.inner._score(prefixes, users)


def synthetic(seed: int, n_sessions: int, n_items: int) -> Sessions:
    rng = np.random.default_rng(seed)
    lists = [rng.zipf(1.6, int(rng.integers(2, 9))) % n_items for _ in range(n_sessions)]
    return Sessions.from_lists([x.tolist() for x in lists], n_items)


@pytest.mark.parametrize("name", ["pop", "sknn", "vsknn", "stan", "ar", "sr", "markov",
                                  "cooc", "iknn"])
@pytest.mark.parametrize("ties", TIE_MODES)
def test_evaluate_equals_the_dense_evaluator(name: str, ties: str) -> None:
    train, test = synthetic(0, 300, 50), synthetic(1, 80, 50)
    model = get_model_class(name)().fit(train)
    assert type(model).has_sparse_scores()
    dense = DenseOnly(model).fit(train)
    got = evaluate(model, train, test, ties=ties, ks=(1, 5, 20))
    want = evaluate(dense, train, test, ties=ties, ks=(1, 5, 20))
    np.testing.assert_array_equal(got.ranks, want.ranks)
    np.testing.assert_array_equal(got.target_events, want.target_events)
    keys = [k for k in want.metrics() if not k.startswith(("coverage", "popularity"))]
    assert {k: got.metrics()[k] for k in keys} == {k: want.metrics()[k] for k in keys}
