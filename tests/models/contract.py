"""The contract every session recommender passes (see ``sessionrec/models/base.py``).

Each ``check_*`` function takes a *model factory* — a callable returning a new, unfitted
model with fixed hyper-parameters (a class, or ``functools.partial(Model, epochs=1)``) — and
a temporary directory. :data:`CONTRACT_CHECKS` lists them all; ``test_contract.py`` runs every
check for every factory in its ``MODEL_FACTORIES``, and :func:`check_contract` runs them in
one call for a test of one's own.

Factories should build small, fast configurations: every check fits on a tiny dataset, and
the determinism check fits twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import NotFittedError, SessionRecError
from sessionrec.models.base import SessionRecommender
from sessionrec.models.capabilities import (
    ApproximateTopK,
    ItemEmbeddings,
    RecurrentStep,
    TakesItemVectors,
    UserStateful,
)
from sessionrec.models.prefix_step import PrefixStep
from sessionrec.models.scores import SparseScores

ModelFactory = Callable[[], SessionRecommender]

N_ITEMS = 8
# Item 7 never occurs in training (popularity 0); item 6 occurs once.
TRAIN_SESSIONS = [
    [0, 1, 2],
    [1, 2, 3],
    [2, 3, 4, 5],
    [0, 2, 4],
    [4, 5, 1],
    [3, 0],
    [5, 6, 0, 1],
    [1, 2],
    [2, 4, 5, 3, 1],
]
PREFIXES = [[0], [1, 2], [2, 3, 4], [5, 6, 0, 1], [7]]
# Test sessions in a larger index space: items 8 and 9 are unknown to the models.
TEST_SESSIONS = [[0, 1, 8, 2], [9, 3, 4], [2], [4, 0, 9], [1, 7, 2, 3, 0]]
UNKNOWN = (N_ITEMS, N_ITEMS + 1, 999, -1)


def tiny_train() -> Sessions:
    return Sessions.from_lists(TRAIN_SESSIONS, N_ITEMS, users=list(range(len(TRAIN_SESSIONS))))


def tiny_test() -> Sessions:
    return Sessions.from_lists(TEST_SESSIONS, N_ITEMS + 2, users=[0, 1, -1, 3, 4])


def fitted(factory: ModelFactory) -> SessionRecommender:
    return factory().fit(tiny_train())


def factory_id(factory: ModelFactory) -> str:
    """A readable pytest id: the repr of the model the factory builds."""
    return repr(factory())


def assert_scores_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # Tolerance only for float reordering (batched matmuls); not for behaviour differences.
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


def check_not_fitted(factory: ModelFactory, tmp_path: Path) -> None:
    """An unfitted model holds no learned attribute and refuses to score, recommend or save."""
    model = factory()
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("__")]
    assert not learned, f"__init__ must only store parameters, found {learned}"
    with pytest.raises(NotFittedError):
        model.score([[0]])
    with pytest.raises(NotFittedError):
        model.recommend([[0]], k=2)
    with pytest.raises(NotFittedError):
        list(model.score_next(tiny_test(), np.array([1]), 4))
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model")


def check_fit_returns_self(factory: ModelFactory, tmp_path: Path) -> None:
    """fit returns the model itself, keeps its parameters and leaves the data untouched."""
    model = factory()
    params = model.get_params()
    train = tiny_train()
    items, offsets = train.items.copy(), train.offsets.copy()
    assert model.fit(train) is model
    assert model.n_items_ == N_ITEMS
    assert model.get_params() == params
    np.testing.assert_array_equal(train.items, items)
    np.testing.assert_array_equal(train.offsets, offsets)


def check_score_shape(factory: ModelFactory, tmp_path: Path) -> None:
    """score gives a float32 tensor [B, n_items] without NaN, with or without users."""
    model = fitted(factory)
    for users in (None, [0, 1, -1, 2, 5]):
        scores = model.score(PREFIXES, users)
        assert isinstance(scores, torch.Tensor)
        assert scores.dtype == torch.float32
        assert tuple(scores.shape) == (len(PREFIXES), N_ITEMS)
        assert not scores.isnan().any()
    assert tuple(model.score([]).shape) == (0, N_ITEMS)


def check_batch_independent(factory: ModelFactory, tmp_path: Path) -> None:
    """A prefix's scores do not depend on the other prefixes of the batch."""
    model = fitted(factory)
    together = model.score(PREFIXES)
    for row, prefix in enumerate(PREFIXES):
        assert_scores_close(together[row : row + 1], model.score([prefix]))


def check_recommend(factory: ModelFactory, tmp_path: Path) -> None:
    """recommend: int64 indices / float32 scores [B, k], sorted, k clipped, no padding."""
    model = fitted(factory)
    scores = model.score(PREFIXES)
    for k in (1, 3, N_ITEMS, N_ITEMS + 5):
        idx, val = model.recommend(PREFIXES, k=k)
        width = min(k, N_ITEMS)
        assert idx.dtype == np.int64 and val.dtype == np.float32
        assert idx.shape == val.shape == (len(PREFIXES), width)
        assert ((idx >= 0) & (idx < N_ITEMS)).all()
        assert all(len(set(row)) == width for row in idx.tolist()), "an item recommended twice"
        assert (np.diff(val, axis=1) <= 0).all(), "scores not sorted in descending order"
        expected = scores.gather(1, torch.from_numpy(idx)).numpy()
        np.testing.assert_allclose(val, expected, rtol=1e-5, atol=1e-6)
        # Everything left out scores no higher than the last item kept.
        for row in range(len(PREFIXES)):
            rest = np.setdiff1d(np.arange(N_ITEMS), idx[row])
            assert (scores[row, rest].numpy() <= val[row, -1] + 1e-6).all()


def check_k_below_one(factory: ModelFactory, tmp_path: Path) -> None:
    model = fitted(factory)
    for k in (0, -1):
        with pytest.raises(SessionRecError):
            model.recommend(PREFIXES, k=k)


def check_deterministic(factory: ModelFactory, tmp_path: Path) -> None:
    """Two fits with the same parameters on the same data give identical scores."""
    first, second = fitted(factory), fitted(factory)
    assert torch.equal(first.score(PREFIXES), second.score(PREFIXES))
    assert torch.equal(first.popularity_, second.popularity_)


def check_save_load(factory: ModelFactory, tmp_path: Path) -> None:
    """save / load (through the class and through the base) restore identical scores."""
    model = fitted(factory)
    directory = model.save(tmp_path / "model")
    for loader in (type(model), SessionRecommender):
        loaded = loader.load(directory)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        assert loaded.n_items_ == model.n_items_
        assert torch.equal(loaded.score(PREFIXES), model.score(PREFIXES))
        assert torch.equal(loaded.score([[]]), model.score([[]]))


def check_unknown_and_empty(factory: ModelFactory, tmp_path: Path) -> None:
    """Unknown items are dropped from prefixes; empty prefixes get the training popularity."""
    model = fitted(factory)
    assert_scores_close(model.score([[0, *UNKNOWN, 1]]), model.score([[0, 1]]))
    assert_scores_close(model.score([[*UNKNOWN, 3]]), model.score([[3]]))
    popularity = model.popularity_.expand(2, -1)
    assert torch.equal(model.score([[], list(UNKNOWN)]), popularity)
    idx, _ = model.recommend([[]], k=N_ITEMS)
    assert idx[0, -1] == 7, "the item never seen in training should rank last on popularity"


def check_exclude_seen(factory: ModelFactory, tmp_path: Path) -> None:
    """exclude_seen never recommends a prefix's items unless k exceeds the other items."""
    model = fitted(factory)
    prefixes = [[0, 1, 2], [4, 999], []]
    idx, _ = model.recommend(prefixes, k=N_ITEMS - 3, exclude_seen=True)
    assert not set(idx[0]) & {0, 1, 2}
    assert 4 not in idx[1]
    idx, val = model.recommend(prefixes, k=N_ITEMS, exclude_seen=True)
    assert set(idx[0, -3:]) == {0, 1, 2}
    assert np.isneginf(val[0, -3:]).all()
    assert idx[1, -1] == 4


def check_score_next(factory: ModelFactory, tmp_path: Path) -> None:
    """score_next yields every target once, with the scores score() gives for its prefix."""
    model = fitted(factory)
    test = tiny_test()
    pos = test.position_in_session()
    targets = np.flatnonzero((pos >= 1) & (test.items < N_ITEMS))
    session = test.session_of_event()
    seen: list[int] = []
    for chunk, scores in model.score_next(test, targets, 3):
        chunk = np.asarray(chunk)
        assert 0 < len(chunk) <= 3
        assert tuple(scores.shape) == (len(chunk), N_ITEMS)
        prefixes = [test.items[test.offsets[session[t]] : t] for t in chunk]
        assert_scores_close(scores.float(), model.score(prefixes, test.users[session[chunk]]))
        seen.extend(chunk.tolist())
    assert sorted(seen) == targets.tolist()


def check_prefix_step(factory: ModelFactory, tmp_path: Path) -> None:
    """Served through a window of its last N items, any model scores as ``score`` does on the
    same (truncated) prefix; unknown items do not enter the window."""
    model = fitted(factory)
    step = PrefixStep(model, 3)
    state = step.initial_state(2)
    assert_scores_close(step.scores_from_state(state), model.score([[], []]))
    clicks = [[0, 1], [2, -1], [3, 999], [4, 5]]
    for a, b in clicks:
        state = step.advance(state, torch.tensor([a, b]))
    assert [list(p) for p in step.prefixes(state)] == [[2, 3, 4], [1, 5]]
    assert_scores_close(step.scores_from_state(state), model.score([[2, 3, 4], [1, 5]]))


def check_capabilities(factory: ModelFactory, tmp_path: Path) -> None:
    """Each declared capability behaves as its protocol says."""
    model = fitted(factory)
    if isinstance(model, RecurrentStep):
        state = model.initial_state(2)
        assert state.shape == (2, model.state_size) and state.dtype == torch.float32
        same = model.advance(state, torch.tensor([-1, N_ITEMS + 5]))
        torch.testing.assert_close(same, state)
        for item in (1, 2, 3):
            state = model.advance(state, torch.tensor([item, item]))
        assert_scores_close(model.scores_from_state(state)[:1], model.score([[1, 2, 3]]))
    if isinstance(model, UserStateful):
        users = torch.zeros((2, model.user_state_size))
        start = model.session_start_state(users)
        assert start.shape == (2, model.state_size)
        assert model.advance_user(users, start).shape == (2, model.user_state_size)
    if isinstance(model, ItemEmbeddings):
        emb = model.item_embeddings()
        assert emb.shape[0] == N_ITEMS and emb.dim() == 2
    if isinstance(model, TakesItemVectors):
        with pytest.raises(SessionRecError):
            factory().set_pretrained_items(np.full((N_ITEMS, 4), np.nan, dtype=np.float32))
    if isinstance(model, ApproximateTopK):
        model.use_index(tmp_path / "weights.pt", min_items=1)  # an index even for a toy
        state = model.advance(model.initial_state(1), torch.tensor([1]))
        exact = model.scores_from_state(state)[0]
        values, items = model.topk_from_state(state, 3, [np.array([int(exact.argmax())])])
        assert values.shape == items.shape == (1, 3) and items.dtype == np.int64
        assert int(exact.argmax()) not in items[0].tolist()
        assert list(values[0]) == sorted(values[0], reverse=True)


def check_score_blocks(factory: ModelFactory, tmp_path: Path) -> None:
    """score_blocks (what the evaluator reads) yields every target once with score()'s scores.

    Prefixes include unknown items; a model with sparse scores must give exactly the dense
    numbers, empty prefixes included.
    """
    model = fitted(factory)
    test = tiny_test()
    targets = np.flatnonzero((test.position_in_session() >= 1) & (test.items < N_ITEMS))
    session = test.session_of_event()
    seen: list[int] = []
    for chunk, scores in model.score_blocks(test, targets, 3):
        chunk = np.asarray(chunk)
        assert tuple(scores.shape) == (len(chunk), N_ITEMS)
        dense = scores.dense() if isinstance(scores, SparseScores) else scores.float()
        prefixes = [test.items[test.offsets[session[t]] : t] for t in chunk]
        assert_scores_close(dense, model.score(prefixes, test.users[session[chunk]]))
        seen.extend(chunk.tolist())
    assert sorted(seen) == targets.tolist()
    if type(model).has_sparse_scores():
        prefixes = [*PREFIXES, [], [999, -1], [8, 3]]
        assert torch.equal(model.score_sparse(prefixes).dense(), model.score(prefixes))


CONTRACT_CHECKS: tuple[Callable[[ModelFactory, Path], None], ...] = (
    check_not_fitted,
    check_fit_returns_self,
    check_score_shape,
    check_batch_independent,
    check_recommend,
    check_k_below_one,
    check_deterministic,
    check_save_load,
    check_unknown_and_empty,
    check_exclude_seen,
    check_score_next,
    check_prefix_step,
    check_capabilities,
    check_score_blocks,
)


def check_contract(factory: ModelFactory, tmp_path: Path) -> None:
    """Run every check of the contract on ``factory`` (each in its own sub-directory)."""
    for check in CONTRACT_CHECKS:
        sub = tmp_path / check.__name__
        sub.mkdir()
        check(factory, sub)
