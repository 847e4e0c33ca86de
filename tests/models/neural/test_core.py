"""The neural core: models learn, train reproducibly, resume, stop early, refuse bad input."""

from __future__ import annotations

import pytest
import torch

from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.evaluation.evaluator import evaluate
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.models.neural.base import NeuralRecommender
from sessionrec.training.context import FitContext, resolve_device
from tests.models.cyclic import N, cyclic


def small(name: str, **kw) -> NeuralRecommender:
    params = {"embedding": 16, "batch_size": 16, "n_epochs": 4, "learning_rate": 0.01,
              "progress": False}
    if name == "narm":
        params["hidden"] = 16
    params.update(kw)
    return get_model_class(name)(**params)


@pytest.mark.parametrize("name,extra", [("narm", {}), ("stamp", {}),
                                        ("stamp", {"attention": False}),
                                        ("narm", {"n_sample": 6, "loss": "bpr-max"})])
def test_models_learn_the_next_item(name, extra):
    train, test = cyclic(300, 0), cyclic(40, 1)
    model = small(name, **extra).fit(train)
    recall = evaluate(model, train, test, ks=(1,)).metrics()["recall@1"]
    assert recall > 0.9, recall  # the next item is (last + 1) mod N: fully learnable


def test_parameters_are_typed_and_checked_at_construction():
    narm = get_model_class("narm")
    with pytest.raises(ConfigError, match=r"unknown parameter 'hiden' \(did you mean 'hidden'"):
        narm(hiden=10)
    with pytest.raises(ConfigError, match="hidden: expected an integer"):
        narm(hidden=1.5)
    with pytest.raises(ConfigError, match="batch_size = 0 is out of range"):
        narm(batch_size=0)
    with pytest.raises(ConfigError, match="loss = 'xe' is not one of"):
        narm(loss="xe")
    with pytest.raises(ConfigError, match="full softmax"):
        narm(loss="bpr-max", n_epochs=1, progress=False).fit(cyclic(10))
    assert narm(hidden=7).get_params()["hidden"] == 7
    assert "dropout_context" in narm.parameter_names()


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    from sessionrec.batching.prefixes import PrefixSource

    train = cyclic(200)
    full = small("narm", n_epochs=3, dropout_embed=0.2).fit(train)
    real_epoch = PrefixSource.epoch

    def die_in_epoch_two(self, epoch):
        for i, batch in enumerate(real_epoch(self, epoch)):
            if epoch == 1 and i == 3:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(PrefixSource, "epoch", die_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        small("narm", n_epochs=3, dropout_embed=0.2).fit(
            train, context=FitContext(tmp_path / "ckpt"))
    monkeypatch.setattr(PrefixSource, "epoch", real_epoch)
    resumed = small("narm", n_epochs=3, dropout_embed=0.2).fit(
        train, context=FitContext(tmp_path / "ckpt", resume=True))
    assert resumed.fit_stats_["history"]["resumed_from_epoch"] == 1
    for (k, a), b in zip(full.net_.state_dict().items(), resumed.net_.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_of_another_model_or_vocabulary_is_refused(tmp_path):
    small("narm", n_epochs=1).fit(cyclic(30, vocab="a"), context=FitContext(tmp_path / "c"))
    with pytest.raises(SessionRecError, match="another vocabulary"):
        small("narm", n_epochs=2).fit(cyclic(30, vocab="b"),
                                      context=FitContext(tmp_path / "c", resume=True))
    with pytest.raises(SessionRecError, match="cannot be resumed"):
        small("stamp", n_epochs=2).fit(cyclic(30, vocab="a"),
                                       context=FitContext(tmp_path / "c", resume=True))


def test_early_stopping_keeps_the_best_epoch():
    train, valid = cyclic(200, 0), cyclic(30, 1)
    model = small("stamp", n_epochs=30, patience=2, learning_rate=0.05).fit(train, valid)
    history = model.fit_stats_["history"]
    assert history["stopped_early"] and len(history["epochs"]) < 30
    best = max(e["valid_score"] for e in history["epochs"])
    assert history["best_score"] == best
    assert evaluate(model, train, valid, ks=(20,)).metrics()["mrr@20"] == pytest.approx(best)


def test_save_load_round_trip_and_refusals(tmp_path):
    model = small("narm", n_epochs=1).fit(cyclic(50))
    path = model.save(tmp_path / "m")
    loaded = SessionRecommender.load(path)
    torch.testing.assert_close(loaded.score([[1, 2], [5]]), model.score([[1, 2], [5]]))
    assert loaded.item_embeddings().shape == (N, 16)
    other = tmp_path / "other"
    small("narm", n_epochs=1, hidden=8).fit(cyclic(50)).save(other)
    (path / "weights.pt").write_bytes((other / "weights.pt").read_bytes())
    with pytest.raises(SessionRecError, match="do not fit this model"):
        SessionRecommender.load(path)


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            small("narm", n_epochs=1).fit(cyclic(20), context=FitContext(device="cuda"))
        with pytest.raises(ConfigError, match=r"CUDA is not available|CPU only"):
            get_model_class("gru4rec")(progress=False).fit(
                cyclic(20), context=FitContext(device="cuda"))
    with pytest.raises(ConfigError, match="unknown device"):
        FitContext(device="tpu")
    with pytest.raises(ConfigError, match="resume needs"):
        FitContext(resume=True)


def test_fit_stats():
    train = cyclic(60)
    stats = small("stamp", n_epochs=2).fit(train).fit_stats_
    assert stats["epochs"] == 2 and stats["world_size"] == 1 and stats["device"] == "cpu"
    assert stats["cases"] == train.n_events - train.n_sessions
    assert stats["events_per_s"] == pytest.approx(
        train.n_events * 2 / stats["train_seconds"], rel=1e-6)
