"""Save/load round trip and determinism for every baseline (with non-default options)."""

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import SessionRecError
from sessionrec.models.base import SessionRecommender
from sessionrec.models.baselines import (
    STAN,
    AssociationRules,
    Cooccurrence,
    ItemKNN,
    MarkovChain,
    Popularity,
    SequentialRules,
    SessionKNN,
    SessionPopularity,
    VectorSessionKNN,
)

MODELS = [
    Popularity(),
    SessionPopularity(),
    Cooccurrence(use_all=True, decay=0.8),
    AssociationRules(weighting="div", pruning=5),
    SequentialRules(steps=3),
    MarkovChain(normalize=True),
    ItemKNN(shrinkage=2.0, pruning=5),
    SessionKNN(k=10, sample_size=20),
    VectorSessionKNN(k=10, sample_size=20, idf=True),
    STAN(k=10, sample_size=20, lambda_snh=0.01),
]


def random_sessions(seed: int, n_sessions: int = 200, n_items: int = 50) -> Sessions:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    sessions = [list(rng.choice(n_items, size=rng.integers(1, 8), p=p / p.sum()))
                for _ in range(n_sessions)]
    return Sessions.from_lists(sessions, n_items=n_items + 2)  # 2 items never seen


TRAIN = random_sessions(0)
PREFIXES = [[0], [3, 1, 4, 1], [49, 50, 51], [7, 7, 7], [], [2, 9, 0, 12, 5, 5, 6], [51]]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_save_load_gives_identical_scores(model: SessionRecommender, tmp_path):
    model.fit(TRAIN)
    before = model.score(PREFIXES)
    model.save(tmp_path)
    loaded = SessionRecommender.load(tmp_path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    torch.testing.assert_close(loaded.score(PREFIXES), before, rtol=0, atol=0)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_scores_are_deterministic_and_batch_independent(model: SessionRecommender):
    first = type(model)(**model.get_params()).fit(TRAIN).score(PREFIXES)
    second = type(model)(**model.get_params()).fit(TRAIN).score(PREFIXES)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    one_by_one = torch.cat([model.fit(TRAIN).score([p]) for p in PREFIXES])
    torch.testing.assert_close(one_by_one, first, rtol=0, atol=0)
    assert first.dtype == torch.float32 and first.shape == (len(PREFIXES), TRAIN.n_items)
    assert torch.isfinite(first).all()


@pytest.mark.parametrize("model", MODELS[2:], ids=lambda m: m.name)
def test_items_never_seen_in_training_score_zero(model: SessionRecommender):
    scores = type(model)(**model.get_params()).fit(TRAIN).score(PREFIXES[:2])
    assert (scores[:, -2:] == 0).all()


def test_loading_weights_of_another_model_fails(tmp_path):
    SessionKNN().fit(TRAIN).save(tmp_path)
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    model = STAN()
    model.n_items_ = TRAIN.n_items
    weights.pop("popularity_")
    with pytest.raises(SessionRecError, match="expects"):
        model._set_state(weights)
