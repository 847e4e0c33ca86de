"""p2v: session vectors, scores, options, serving state and the ANN path, by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.p2v import VIEWED, Prod2VecRecommender
from sessionrec.serving.step import ModelStep, SimilarItems

R = 1 / math.sqrt(2)
# Unit item vectors: e0 = [1, 0], e1 = [0, 1], e2 = [1, 1]/sqrt2, e3 = [-1, 0].
VECTORS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [R, R], [-1.0, 0.0]])
POPULARITY = torch.tensor([1.0, 0.5, 0.25, 0.0])


def hand_model(**params) -> Prod2VecRecommender:
    model = Prod2VecRecommender(dim=2, **params)
    model.n_items_, model.vocab_ = 4, ""
    model.popularity_ = POPULARITY.clone()
    model.vectors_ = VECTORS.clone()
    return model


def test_session_vector_is_the_recency_weighted_mean() -> None:
    # prefix [0, 1], decay 0.5: s = 0.5 e0 + e1 = [0.5, 1] -> [1, 2]/sqrt5
    scores = hand_model(decay=0.5).score([[0, 1]])[0]
    a, b = 1 / math.sqrt(5), 2 / math.sqrt(5)
    torch.testing.assert_close(scores, torch.tensor([a, b, (a + b) * R, -a]))


def test_only_the_last_n_items_count() -> None:
    # last_n 1: the session vector is e1 whatever came before
    scores = hand_model(last_n=1).score([[3, 0, 1]])[0]
    torch.testing.assert_close(scores, torch.tensor([0.0, 1.0, R, 0.0]))


def test_popularity_mix_and_exclude_viewed() -> None:
    scores = hand_model(pop_weight=0.5, exclude_viewed=True).score([[0]])[0]
    # cosines to e0: [1, 0, R, -1]; + 0.5 * popularity; item 0 viewed
    torch.testing.assert_close(scores, torch.tensor([VIEWED, 0.25, R + 0.125, -1.0]))


def test_bad_parameters_are_refused() -> None:
    for bad in ({"last_n": 0}, {"decay": 0.0}, {"decay": 1.5}, {"pop_weight": -1.0},
                {"negatives_from": "brand"}):
        with pytest.raises(ConfigError):
            Prod2VecRecommender(**bad)


def test_serving_state_keeps_the_last_n_items() -> None:
    model = hand_model(last_n=2)
    s = model.initial_state(2)
    s = model.advance(s, torch.tensor([0, -1]))
    s = model.advance(s, torch.tensor([1, -1]))
    s = model.advance(s, torch.tensor([2, 3]))
    assert s.tolist() == [[1.0, 2.0], [-1.0, 3.0]]
    torch.testing.assert_close(model.scores_from_state(s), model.score([[1, 2], [3]]))


def test_model_step_uses_topk_from_state_and_excludes() -> None:
    step = ModelStep(hand_model(decay=0.5), blocked=np.array([2]))
    _, items, scores = step.step(step.start_states(None, 1), np.array([0]), k=3,
                                 exclude=[np.array([0])])
    # after [0]: cosines [1, 0, R, -1]; 0 excluded, 2 blocked -> 1 then 3
    finite = np.isfinite(scores[0])  # the batcher drops the -inf slots
    assert items[0][finite].tolist() == [1, 3]
    assert scores[0].tolist() == [0.0, -1.0, float("-inf")]


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))).astype(
        np.float32)


def test_ann_answers_match_exact_ones(tmp_path) -> None:
    v = torch.nn.functional.normalize(torch.from_numpy(clustered(400, 8, 0)), dim=1)
    model = Prod2VecRecommender(dim=8)
    model.n_items_, model.vocab_ = 400, ""
    model.popularity_ = torch.zeros(400)
    model.vectors_ = v
    states = model.advance(model.initial_state(3), torch.tensor([5, 17, 100]))
    exact_v, exact_i = model.topk_from_state(states, 10, [np.array([], np.int64)] * 3)
    assert model.use_index(tmp_path / "weights.pt", min_items=0) is not None
    assert (tmp_path / "weights.pt.ann.npz").is_file()
    ann_v, ann_i = model.topk_from_state(states, 10, [np.array([], np.int64)] * 3)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ann_i, exact_i, strict=True)])
    assert overlap >= 0.9
    np.testing.assert_allclose(ann_v[:, 0], exact_v[:, 0], rtol=1e-5)
    # similar products through the index never return the product itself
    rows, _ = SimilarItems(v, torch.tensor([], dtype=torch.int64), model.ann).topk(5, 10)
    assert 5 not in rows.tolist() and len(rows) == 10


def test_fit_with_metadata_category_negatives_and_bounce_filter() -> None:
    sessions = Sessions.from_lists([[0, 1, 2], [1, 2, 3], [3, 4, 5], [4, 5, 0]] * 5, 6)
    items = pl.DataFrame({"item_idx": range(6), "item_id": [f"p{i}" for i in range(6)],
                          "brand": ["a", "a", "a", "b", "b", "b"],
                          "category": ["x", "x", "y", "y", "z", "z"]})
    model = Prod2VecRecommender(dim=4, negatives_from="category", min_dwell=30.0)
    model.set_item_table(items)
    model.fit(sessions)
    assert model.bounces_dropped_ == 0  # from_lists clicks are 60 s apart
    assert tuple(model.vectors_.shape) == (6, 4)
    with pytest.raises(ConfigError, match="type"):
        Prod2VecRecommender(dim=4, negatives_from="category").fit(sessions)
