"""Professor forcing for GRU4Rec/HGRU4Rec: parameters, rollouts, discriminator."""

from __future__ import annotations

import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluation import evaluate
from sessionrec.models.baselines.vsknn import VectorSessionKNN
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.models.professor import Adversary, Discriminator
from tests.models.cyclic import cyclic


def small(cls=GRU4Rec, **kw):
    params = {"layers": [16], "batch_size": 8, "n_sample": 8, "n_epochs": 1,
              "learning_rate": 0.1, "progress": False, "bptt": 3, "pf_weight": 1.0}
    if cls is HGRU4Rec:
        params["user_layers"] = [8]
    params.update(kw)
    return cls(**params)


@pytest.mark.parametrize(("kw", "name"), [
    ({"pf_weight": -0.5}, "pf_weight"),
    ({"pf_rollout": 4}, "pf_rollout = 4 is longer than the training window bptt = 3"),
    ({"bptt": 1}, "pf_rollout is 1"),
    ({"pf_feed": "sampled"}, "pf_feed"),
    ({"pf_disc_hidden": 0}, "pf_disc_hidden"),
    ({"pf_disc_steps": 0}, "pf_disc_steps"),
    ({"pf_disc_lr": 0.0}, "pf_disc_lr"),
])
@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
def test_bad_professor_forcing_parameters_are_refused_at_construction(cls, kw, name):
    with pytest.raises(ConfigError, match=name):
        small(cls, **kw)


def test_rollout_longer_than_every_session_is_refused_before_training():
    train = Sessions.from_lists([[0, 1, 2], [3, 4, 5, 6]], 8)  # longest: 3 targets
    with pytest.raises(ConfigError, match="pf_rollout = 4 steps is longer"):
        small(bptt=4).fit(train)


def test_discriminator_on_a_model_without_recurrent_state_is_refused():
    with pytest.raises(ConfigError, match=r"pf_weight.*recurrent session state"):
        Adversary(VectorSessionKNN(), top_width=4, seed=0)


@pytest.mark.parametrize(("sessions", "bptt", "windows", "lanes"), [
    # Two lanes walk aligned 3-step sessions: two windows, every lane rolls out.
    ([[0, 1, 2, 3], [4, 5, 6, 7], [1, 2, 3, 4], [5, 6, 7, 0]], 3, 2, 4),
    # 2 and 3 steps: the first window keeps both lanes; the second has one step only.
    ([[0, 1, 2], [3, 4, 5, 6]], 2, 1, 2),
])
def test_rollouts_use_the_lanes_that_stay_in_their_session(sessions, bptt, windows, lanes):
    model = small(batch_size=2, bptt=bptt).fit(Sessions.from_lists(sessions, 8))
    pf = model.fit_stats_["professor_forcing"][0]
    assert (pf["pf_windows"], pf["pf_lanes"]) == (windows, lanes)
    assert 0.0 <= pf["pf_disc_accuracy"] <= 1.0


def test_discriminator_separates_two_regimes():
    torch.manual_seed(0)
    disc = Discriminator(2, 8)
    opt = torch.optim.Adam(disc.parameters(), lr=0.05)
    teacher, free = torch.ones(3, 16, 2), -torch.ones(3, 16, 2)
    labels = torch.cat([torch.ones(16), torch.zeros(16)])
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            disc(torch.cat([teacher, free], dim=1)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits = disc(torch.cat([teacher, free], dim=1))
    assert logits.shape == (32,)
    assert bool(((logits > 0).float() == labels).all())


@pytest.mark.parametrize(("cls", "feed"), [(GRU4Rec, "weighted"), (HGRU4Rec, "top1")])
def test_professor_forcing_trains_deterministically_and_learns(cls, feed):
    train, test = cyclic(120, 0), cyclic(30, 1)
    a = small(cls, pf_feed=feed, n_epochs=2).fit(train)
    b = small(cls, pf_feed=feed, n_epochs=2).fit(train)
    for k, v in a.net_.state_dict().items():
        assert torch.equal(v, b.net_.state_dict()[k]), k
    assert len(a.fit_stats_["professor_forcing"]) == 2
    assert evaluate(a, train, test, ks=(20,)).metrics()["mrr@20"] > 0.6


def test_adversarial_term_changes_the_trajectory():
    train = cyclic(60, 0)
    a = small(pf_weight=0.0).fit(train)
    b = small(pf_weight=5.0).fit(train)
    assert "professor_forcing" not in a.fit_stats_
    assert not torch.equal(a.net_.w_hh0, b.net_.w_hh0)
