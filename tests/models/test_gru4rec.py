"""GRU4Rec beyond the shared contract: learning, bad input, checkpoints, state API."""

from __future__ import annotations

import pytest
import torch

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.evaluation import evaluate
from sessionrec.models.base import SessionRecommender
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.training.context import FitContext
from tests.models.cyclic import N, cyclic


def small(**kw) -> GRU4Rec:
    params = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 3,
              "learning_rate": 0.1, "progress": False}
    params.update(kw)
    return GRU4Rec(**params)


@pytest.mark.parametrize("extra", [
    {},
    {"loss": "bpr-max", "elu_param": 0.5, "bpreg": 0.5},
    {"constrained_embedding": False},  # one-hot-equivalent input
    {"constrained_embedding": False, "embedding": 8, "optimizer": "adam",
     "learning_rate": 0.02},
])
def test_learns_a_deterministic_sequence(extra):
    train, test = cyclic(300, 0), cyclic(40, 1)
    model = small(**extra).fit(train)
    mrr = evaluate(model, train, test, ks=(1, 20)).metrics()["mrr@20"]
    assert mrr > 0.6, f"{extra}: mrr@20 {mrr:.3f}"


def test_skips_single_event_sessions_and_counts_them():
    train = Sessions.from_lists([[0, 1, 2], [3], [4, 5], [6]], 8)
    model = small(n_epochs=1).fit(train)
    assert model.skipped_sessions_ == 2
    assert model.fit_stats_["skipped_sessions"] == 2
    with pytest.raises(SessionRecError, match="two or more events"):
        small().fit(Sessions.from_lists([[0], [1]], 4))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("loss", "hinge", "valid losses: cross-entropy, bpr-max, top1-max, bpr, top1"),
    ("optimizer", "sgd", "valid optimizers: adagrad, adam"),
    ("layers", [0], "layers"),
    ("dropout_p_hidden", 1.0, "dropout_p_hidden"),
    ("batch_size", 0, "batch_size"),
])
def test_bad_config_names_the_parameter(key, value, message):
    with pytest.raises(ConfigError, match=message):
        small(**{key: value})


def test_n_sample_zero_needs_two_lanes():
    with pytest.raises(ConfigError, match="batch_size must be at least 2"):
        small(n_sample=0, batch_size=1)
    small(n_sample=0, batch_size=4).fit(cyclic(20))  # in-batch negatives only


def test_too_large_for_memory_is_refused_with_an_estimate():
    model = small(layers=[64], max_memory_gb=0.001)
    with pytest.raises(SessionRecError, match=r"needs an estimated [0-9.]+ GiB"):
        model.fit(cyclic(20))


def test_memory_estimate_grows_with_catalogue():
    model = small()
    assert sum(model.estimate_memory(10_000).values()) > sum(model.estimate_memory(100).values())


def test_state_api_matches_score():
    model = small().fit(cyclic(100))
    prefixes = [[0, 1, 2], [5], [7, 8]]
    state = model.initial_state(3)
    for t in range(3):
        items = torch.tensor([p[t] if t < len(p) else -1 for p in prefixes])
        scores, state = model.step(state, items)  # -1: unknown, the state stays
    assert torch.allclose(scores, model.score(prefixes), atol=1e-5)


def test_unknown_item_leaves_state_unchanged():
    model = small().fit(cyclic(50))
    state = model.advance(model.initial_state(1), torch.tensor([3]))
    assert torch.equal(model.advance(state, torch.tensor([N + 5])), state)


def test_vocab_mismatch_is_refused(tmp_path):
    model = small(n_epochs=1).fit(cyclic(30, vocab="12:aaaa"))
    model.save(tmp_path / "m")
    assert SessionRecommender.load(tmp_path / "m", vocab="12:aaaa").vocab_ == "12:aaaa"
    with pytest.raises(SessionRecError, match="another item vocabulary"):
        SessionRecommender.load(tmp_path / "m", vocab="12:bbbb")


def test_early_stopping_keeps_the_best_epoch():
    train, valid = cyclic(200, 0), cyclic(30, 1)
    model = small(n_epochs=6, patience=2, learning_rate=0.2).fit(train, valid)
    hist = model.fit_stats_["history"]
    scores = [e["valid_score"] for e in hist["epochs"]]
    assert hist["best_score"] == max(scores)
    assert hist["best_epoch"] == 1 + scores.index(max(scores))
    # The kept weights are the best epoch's: evaluating them gives its score again.
    again = evaluate(model, train, valid, ks=(20,)).metrics()["mrr@20"]
    assert again == pytest.approx(hist["best_score"])
    if hist["stopped_early"]:
        assert len(scores) - hist["best_epoch"] == 2


def test_best_epoch_weights_are_restored_when_it_is_not_the_last(monkeypatch):
    train, valid = cyclic(80, 0), cyclic(10, 1)
    two = small(n_epochs=2).fit(train)  # the same trajectory, stopped after epoch 2
    scores = iter([0.2, 0.9, 0.1])
    monkeypatch.setattr(GRU4Rec, "_validation_mrr", lambda self, t, v: next(scores))
    three = small(n_epochs=3).fit(train, valid)
    assert three.fit_stats_["history"]["best_epoch"] == 2
    for k, v in two.net_.state_dict().items():
        assert torch.equal(v, three.net_.state_dict()[k]), k


def _weights(model):
    return {k: v.clone() for k, v in model.net_.state_dict().items()}


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    train = cyclic(120)
    real_draw = NegativeSampler.draw
    calls = {"n": 0}

    def counting_draw(self):
        calls["n"] += 1
        return real_draw(self)

    monkeypatch.setattr(NegativeSampler, "draw", counting_draw)
    full = small(n_epochs=3, momentum=0.3, dropout_p_hidden=0.2).fit(train)
    kill_at, calls["n"] = calls["n"] // 2, 0  # the middle of epoch two

    killed = small(n_epochs=3, momentum=0.3, dropout_p_hidden=0.2)
    killed_ctx = FitContext(tmp_path / "ckpt")
    def draw_then_die(self):
        calls["n"] += 1
        if calls["n"] > kill_at:
            raise KeyboardInterrupt
        return real_draw(self)

    monkeypatch.setattr(NegativeSampler, "draw", draw_then_die)
    with pytest.raises(KeyboardInterrupt):
        killed.fit(train, context=killed_ctx)
    monkeypatch.setattr(NegativeSampler, "draw", real_draw)
    assert (tmp_path / "ckpt" / "last.pt").is_file()

    resumed = small(n_epochs=3, momentum=0.3, dropout_p_hidden=0.2)
    resumed_ctx = FitContext(tmp_path / "ckpt", resume=True)
    resumed.fit(train, context=resumed_ctx)
    assert resumed.fit_stats_["history"]["resumed_from_epoch"] >= 1
    for k, v in _weights(full).items():
        assert torch.equal(v, resumed.net_.state_dict()[k]), k


def test_checkpoint_of_another_vocabulary_is_refused(tmp_path):
    first = small(n_epochs=1)
    first_ctx = FitContext(tmp_path / "ckpt")
    first.fit(cyclic(30, vocab="12:aaaa"), context=first_ctx)
    other = small(n_epochs=2)
    other_ctx = FitContext(tmp_path / "ckpt", resume=True)
    with pytest.raises(SessionRecError, match="another vocabulary"):
        other.fit(cyclic(30, vocab="12:bbbb"), context=other_ctx)


def test_deterministic_and_seed_sensitive():
    a = small(seed=1).fit(cyclic(60))
    b = small(seed=1).fit(cyclic(60))
    c = small(seed=2).fit(cyclic(60))
    assert torch.equal(a.net_.Wy, b.net_.Wy)
    assert not torch.equal(a.net_.Wy, c.net_.Wy)


def test_fit_stats_count_events_over_epochs():
    train = cyclic(40)
    model = small(n_epochs=2).fit(train)
    stats = model.fit_stats_
    assert stats["epochs"] == 2
    assert stats["events"] == train.n_events
    assert stats["events_per_s"] == pytest.approx(
        train.n_events * 2 / stats["train_seconds"], rel=1e-6)


def test_pretrained_item_vectors_as_input(tmp_path):
    train, test = cyclic(300, 0), cyclic(40, 1)
    vectors = torch.randn(N, 6, generator=torch.Generator().manual_seed(0))
    frozen = small(n_epochs=6).set_pretrained_items(vectors, freeze=True)
    assert frozen.input_mode == "embedding" and frozen.get_params()["item_vectors"] == "frozen"
    frozen.fit(train)
    assert torch.equal(frozen.net_.E, vectors)  # never updated
    assert evaluate(frozen, train, test, ks=(3,)).metrics()["recall@3"] > 0.5
    loaded = SessionRecommender.load(frozen.save(tmp_path / "m"))
    assert torch.equal(loaded.score([[1, 2]]), frozen.score([[1, 2]]))
    tuned = small().set_pretrained_items(vectors, freeze=False).fit(train)
    assert not torch.equal(tuned.net_.E, vectors)
    with pytest.raises(SessionRecError, match=f"have {N + 2} rows"):
        small().set_pretrained_items(torch.zeros(N + 2, 6)).fit(train)


def test_checkpoint_of_other_item_vectors_is_refused(tmp_path):
    first = small(n_epochs=1).set_pretrained_items(torch.ones(N, 4))
    first_ctx = FitContext(tmp_path / "ckpt")
    first.fit(cyclic(30), context=first_ctx)
    other = small(n_epochs=2).set_pretrained_items(torch.zeros(N, 4))
    other_ctx = FitContext(tmp_path / "ckpt", resume=True)
    with pytest.raises(SessionRecError, match="cannot be resumed"):
        other.fit(cyclic(30), context=other_ctx)
