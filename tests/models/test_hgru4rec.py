"""HGRU4Rec beyond the shared contract: user-state carry-over, stored user states, persistence,
checkpoints, pre-trained item vectors, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.evaluation import evaluate
from sessionrec.models.base import SessionRecommender
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.runs import concat_sessions
from sessionrec.training.context import FitContext

N_TASTES, N_NOISE = 6, 6
N = N_TASTES + N_NOISE


def tastes(n_users: int, n_sessions: int, seed: int = 0) -> tuple[Sessions, Sessions]:
    """Sessions [noise, favourite, noise]: a user's favourite item is the same in every session
    and only their earlier sessions tell which it is. Train: all but each user's last
    session; test: the last one."""
    rng = np.random.default_rng(seed)
    favourite = rng.integers(0, N_TASTES, n_users)
    sessions = []
    for _ in range(n_sessions):  # session k of every user, then session k + 1
        for u in range(n_users):
            noise = rng.integers(N_TASTES, N, 2)
            sessions.append([int(noise[0]), int(favourite[u]), int(noise[1])])
    cut = (n_sessions - 1) * n_users
    users = list(range(n_users)) * n_sessions
    return (Sessions.from_lists(sessions[:cut], N, users=users[:cut]),
            Sessions.from_lists(sessions[cut:], N, users=users[cut:]))


def histories(seed: int = 0, n_users: int = 12, vocab: str = "") -> Sessions:
    """Users with several sessions of 1-5 events (one-event sessions are skipped), some
    sessions of unknown users, and start times that are not in index order."""
    rng = np.random.default_rng(seed)
    sessions, users = [], []
    for _ in range(5 * n_users):
        sessions.append([int(i) for i in rng.integers(0, N, rng.integers(1, 6))])
        users.append(int(rng.integers(-1, n_users)))
    base = Sessions.from_lists(sessions, N, users=users)
    # Shuffle session start times; events keep their order inside a session.
    shift = np.repeat(rng.permutation(base.n_sessions) * 10_000, base.lengths)
    return dataclasses.replace(base, ts=base.ts + shift, vocab=vocab)


def small(**kw) -> HGRU4Rec:
    params = {"layers": [12], "user_layers": [10], "batch_size": 8, "n_sample": 8,
              "n_epochs": 2, "learning_rate": 0.02, "progress": False}
    params.update(kw)
    return HGRU4Rec(**params)


def test_user_history_carries_over_where_sessions_alone_cannot_tell():
    train, test = tastes(40, 5)
    common = {"layers": [16], "batch_size": 16, "n_sample": 8, "n_epochs": 15,
              "progress": False}
    session_only = GRU4Rec(learning_rate=0.1, **common).fit(train)
    with_user = HGRU4Rec(user_layers=[16], learning_rate=0.02, **common).fit(train)

    def first_step_mrr(model):  # predicting the favourite from the first (noise) click
        return evaluate(model, train, test, ks=(20,)).by_position()["1"]["mrr@20"]

    # Guessing among the 6 favourites gives ~0.4; knowing the user's gives 1.
    assert first_step_mrr(session_only) < 0.55
    assert first_step_mrr(with_user) > 0.75


def _manual_user_states(model: HGRU4Rec, sessions: Sessions) -> dict[int, torch.Tensor]:
    """Walk every known user's sessions in time order with the public serving hooks."""
    first_ts = sessions.ts[sessions.offsets[:-1]]
    states: dict[int, torch.Tensor] = {}
    for s in np.lexsort((np.arange(sessions.n_sessions), first_ts)):
        user = int(sessions.users[s])
        if user < 0 or sessions.lengths[s] < 2:
            continue
        u = states.get(user, torch.zeros((1, model.user_state_size)))
        state = model.session_start_state(u)
        for item in sessions.session(s):
            state = model.advance(state, torch.tensor([item]))
        states[user] = model.advance_user(u, state)
    return states


@pytest.mark.parametrize("extra", [
    {},
    {"user_propagation": "all", "user_to_output": True, "constrained_embedding": False,
     "layers": [8, 6], "user_layers": [7, 5]},
])
def test_stored_user_states_are_the_users_walked_history(extra):
    train = histories()
    model = small(**extra).fit(train)
    expected = _manual_user_states(model, train)
    assert model.user_ids_.tolist() == sorted(expected)
    for user, state in expected.items():
        torch.testing.assert_close(model.user_state_of([user]), state, rtol=1e-5, atol=1e-6)
    # Users never seen (or unknown) start from zeros: the same as initial_state.
    assert torch.equal(model.user_state_of([99, -1]), torch.zeros((2, model.user_state_size)))
    torch.testing.assert_close(model.score([[3, 4]], users=[99]), model.score([[3, 4]]))


def test_scores_depend_on_the_user():
    train = histories()
    model = small().fit(train)
    users = model.user_ids_[:2].tolist()
    by_user = model.score([[3, 4], [3, 4]], users=users)
    assert not torch.allclose(by_user[0], by_user[1])
    u = model.user_state_of(users[:1])
    state = model.advance(model.advance(model.session_start_state(u), torch.tensor([3])),
                          torch.tensor([4]))
    torch.testing.assert_close(by_user[:1], model.scores_from_state(state))


def test_extend_user_history_continues_the_walk():
    first, more = histories(0), histories(1)
    more = dataclasses.replace(more, ts=more.ts + first.ts.max() + 1)
    model = small().fit(first)
    walked_ids, walked = model._walk_histories(concat_sessions(first, more), None)
    model.extend_user_history(more)
    assert model.user_ids_.tolist() == walked_ids.tolist()
    torch.testing.assert_close(model.user_states_, walked, rtol=1e-5, atol=1e-6)


def test_deterministic_and_seed_sensitive():
    train = histories()
    a, b, c = small(seed=1).fit(train), small(seed=1).fit(train), small(seed=2).fit(train)
    for k, v in a.net_.state_dict().items():
        assert torch.equal(v, b.net_.state_dict()[k]), k
    assert torch.equal(a.user_states_, b.user_states_)
    assert not torch.equal(a.net_.u_w_ih0, c.net_.u_w_ih0)


def test_save_load_restores_user_states(tmp_path):
    train = histories(vocab="12:aaaa")
    model = small(user_propagation="all").fit(train)
    loaded = SessionRecommender.load(model.save(tmp_path / "m"), vocab="12:aaaa")
    assert isinstance(loaded, HGRU4Rec)
    assert torch.equal(loaded.user_ids_, model.user_ids_)
    assert torch.equal(loaded.user_states_, model.user_states_)
    users = model.user_ids_.tolist()
    prefixes = [[1, 2]] * len(users)
    assert torch.equal(loaded.score(prefixes, users), model.score(prefixes, users))
    weights = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    del weights["users.states"]
    torch.save(weights, tmp_path / "m" / "weights.pt")
    with pytest.raises(SessionRecError, match="user states"):
        SessionRecommender.load(tmp_path / "m")


def test_resume_after_a_kill_gives_the_same_model(tmp_path, monkeypatch):
    train = histories()
    params = {"n_epochs": 3, "dropout_p_hidden_usr": 0.2, "dropout_p_init": 0.1}
    real_draw = NegativeSampler.draw
    calls = {"n": 0}

    def counting_draw(self):
        calls["n"] += 1
        return real_draw(self)

    monkeypatch.setattr(NegativeSampler, "draw", counting_draw)
    full = small(**params).fit(train)
    kill_at, calls["n"] = calls["n"] // 2, 0  # in epoch two

    def draw_then_die(self):
        calls["n"] += 1
        if calls["n"] > kill_at:
            raise KeyboardInterrupt
        return real_draw(self)

    killed = small(**params)
    killed_ctx = FitContext(tmp_path / "ckpt")
    monkeypatch.setattr(NegativeSampler, "draw", draw_then_die)
    with pytest.raises(KeyboardInterrupt):
        killed.fit(train, context=killed_ctx)
    monkeypatch.setattr(NegativeSampler, "draw", real_draw)

    resumed = small(**params)
    resumed_ctx = FitContext(tmp_path / "ckpt", resume=True)
    resumed.fit(train, context=resumed_ctx)
    assert resumed.fit_stats_["history"]["resumed_from_epoch"] >= 1
    for k, v in full.net_.state_dict().items():
        assert torch.equal(v, resumed.net_.state_dict()[k]), k
    assert torch.equal(full.user_states_, resumed.user_states_)


def test_early_stopping_watches_mrr_at_10():
    train, valid = tastes(16, 4, seed=0)
    model = small(n_epochs=3, patience=1).fit(train, valid)
    hist = model.fit_stats_["history"]
    assert hist["best_score"] == max(e["valid_score"] for e in hist["epochs"])
    again = evaluate(model, train, valid, ks=(10,)).metrics()["mrr@10"]
    assert again == pytest.approx(hist["best_score"])


def test_pretrained_item_vectors_frozen_or_fine_tuned(tmp_path):
    train = histories()
    vectors = torch.randn(N, 5, generator=torch.Generator().manual_seed(0))
    frozen = small().set_pretrained_items(vectors, freeze=True)
    assert frozen.get_params()["embedding"] == 5
    assert frozen.input_mode == "embedding"
    frozen.fit(train)
    assert torch.equal(frozen.net_.E, vectors)
    loaded = SessionRecommender.load(frozen.save(tmp_path / "m"))
    assert torch.equal(loaded.score([[1, 2]]), frozen.score([[1, 2]]))
    tuned = small().set_pretrained_items(vectors.numpy(), freeze=False).fit(train)
    assert not torch.equal(tuned.net_.E, vectors)
    with pytest.raises(SessionRecError, match=f"have {N + 1} rows but the training "
                                              f"catalogue has {N} items"):
        small().set_pretrained_items(torch.zeros(N + 1, 5)).fit(train)
    with pytest.raises(ConfigError, match="set_pretrained_items"):
        small(item_vectors="frozen", constrained_embedding=False, embedding=5).fit(train)
    with pytest.raises(ConfigError, match="NaN"):
        small().set_pretrained_items(torch.full((N, 5), float("nan")))


@pytest.mark.parametrize(("params", "message"), [
    ({"user_propagation": "each"}, "valid: init, all"),
    ({"user_layers": [0]}, "user_layers"),
    ({"dropout_p_init": 1.0}, "dropout_p_init"),
    ({"user_layers": [], "user_to_output": True}, "need a user level"),
    ({"item_vectors": "frozen"}, "constrained_embedding = false"),
    ({"loss": "hinge"}, "hgru4rec: unknown loss"),
])
def test_bad_config_names_the_parameter(params, message):
    with pytest.raises(ConfigError, match=message):
        small(**params)


def test_without_user_level_sessions_start_from_zero():
    model = small(user_layers=[]).fit(histories())
    assert model.user_state_size == 0 and model.state_size == 12
    assert torch.equal(model.initial_state(2), torch.zeros((2, 12)))
    assert model.user_states_.shape == (len(model.user_ids_), 0)
