"""Every model in MODEL_FACTORIES passes every check of the contract (see contract.py).

To put a model under the contract, append a factory (a class, or ``functools.partial`` with
small hyper-parameters) to ``MODEL_FACTORIES``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import SessionRecommender, get_model_class, register_model

from .contract import (
    CONTRACT_CHECKS,
    ModelFactory,
    check_contract,
    check_unknown_and_empty,
    factory_id,
)

BASELINES = ("pop", "spop", "cooc", "ar", "sr", "markov", "iknn", "sknn", "vsknn", "stan")


@register_model
class ToyLastItemModel(SessionRecommender):
    """Test-only model: how often each item followed the prefix's last item in training,
    plus ``pop_weight`` times the popularity (which also breaks most ties)."""

    name = "test-toy-last-item"

    def __init__(self, pop_weight: float = 0.01) -> None:
        super().__init__(pop_weight=pop_weight)
        self.pop_weight = pop_weight

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        same_session = np.diff(train.session_of_event()) == 0
        src = torch.from_numpy(train.items[:-1][same_session])
        dst = torch.from_numpy(train.items[1:][same_session])
        counts = torch.zeros(self.n_items_, self.n_items_)
        counts.index_put_((src, dst), torch.ones(len(src)), accumulate=True)
        self.transitions_ = counts

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        last = torch.tensor([int(p[-1]) for p in prefixes], dtype=torch.int64)
        return self.transitions_[last] + self.pop_weight * self.popularity_

    def _state(self) -> dict[str, torch.Tensor]:
        return {"transitions_": self.transitions_}

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.transitions_ = state.pop("transitions_")
        super()._set_state(state)


MODEL_FACTORIES: list[ModelFactory] = [
    ToyLastItemModel,
    functools.partial(ToyLastItemModel, pop_weight=0.5),
    *(get_model_class(name) for name in BASELINES),
    *(functools.partial(get_model_class("gru4rec"), **{
        "layers": [8], "batch_size": 3, "n_sample": 4, "n_epochs": 2, "progress": False,
        **extra})
      for extra in ({}, {"loss": "bpr-max", "constrained_embedding": False, "embedding": 6},
                    {"loss": "top1-max", "constrained_embedding": False, "layers": [8, 6],
                     "dropout_p_hidden": 0.2, "dropout_p_embed": 0.1},
                    {"loss": "bpr", "optimizer": "adam", "n_sample": 0, "momentum": 0.1},
                    {"loss": "top1", "logq": 1.0})),
    *(functools.partial(get_model_class("p2v"), dim=8, epochs=2, **extra)
      for extra in ({}, {"pop_weight": 0.3, "last_n": 2, "decay": 0.5},
                    {"exclude_viewed": True, "min_dwell": 30.0, "lambda_meta": 0.0})),
    *(functools.partial(get_model_class("hgru4rec"), **{
        "layers": [8], "user_layers": [6], "batch_size": 3, "n_sample": 4, "n_epochs": 2,
        "progress": False, **extra})
      for extra in ({},
                    {"user_propagation": "all", "user_to_output": True,
                     "constrained_embedding": False, "dropout_p_hidden_usr": 0.2,
                     "dropout_p_init": 0.1, "dropout_p_embed": 0.1},
                    {"loss": "bpr-max", "constrained_embedding": False, "embedding": 6,
                     "layers": [8, 6], "user_layers": [6, 4], "user_propagation": "all",
                     "optimizer": "adagrad", "momentum": 0.1},
                    {"user_layers": [], "n_sample": 0})),
    *(functools.partial(get_model_class("narm"), **{
        "embedding": 6, "hidden": 8, "batch_size": 4, "n_epochs": 2, "progress": False,
        **extra})
      for extra in ({}, {"n_sample": 4, "loss": "bpr-max", "layers": 2, "max_len": 2,
                         "optimizer": "adagrad", "learning_rate": 0.05})),
    *(functools.partial(get_model_class("stamp"), **{
        "embedding": 6, "batch_size": 4, "n_epochs": 2, "progress": False, **extra})
      for extra in ({}, {"attention": False, "n_sample": 0, "loss": "top1-max",
                         "optimizer": "sgd", "momentum": 0.5, "clip_grad": 1.0})),
    *(functools.partial(get_model_class("srgnn"), **{
        "hidden": 6, "batch_size": 4, "n_epochs": 2, "progress": False, **extra})
      for extra in ({}, {"steps": 2, "hybrid": False, "n_sample": 4, "loss": "bpr-max",
                         "max_len": 2})),
    *(functools.partial(get_model_class("gcegnn"), **{
        "hidden": 6, "batch_size": 4, "n_epochs": 2, "neighbours": 3, "progress": False,
        **extra})
      for extra in ({}, {"hops": 2, "epsilon": 1, "global_attention": "linear",
                         "n_sample": 4, "logq": 1.0, "max_len": 2, "dropout_local": 0.1})),
    get_model_class("slist"),
    functools.partial(get_model_class("slist"), alpha=1.0, epsilon=0.0, normalise="l2",
                      session_weight=1.0, train_weight=1.0, predict_weight=2.0),
    functools.partial(get_model_class("slist"), alpha=0.0, direction="sr"),
    *(functools.partial(get_model_class("core"), **{
        "embedding": 6, "batch_size": 4, "n_epochs": 2, "progress": False, **extra})
      for extra in ({"heads": 2, "inner": 8, "max_len": 3},
                    {"encoder": "ave", "n_sample": 4, "logq": 1.0, "temperature": 0.2})),
    *(functools.partial(get_model_class("sasrec"), **{
        "embedding": 6, "batch_size": 4, "n_epochs": 2, "progress": False, **extra})
      for extra in ({"max_len": 3}, {"heads": 2, "blocks": 1, "n_sample": 4, "dropout": 0.0})),
    functools.partial(get_model_class("hybrid"), components=[{"name": "sr"},
                                                            {"name": "vsknn"}],
                      weights=[0.6, 0.4]),
    functools.partial(get_model_class("hybrid"), method="cascade", depth=2, components=[
        {"name": "vsknn", "params": {"k": 3}}, {"name": "pop"}]),
    functools.partial(get_model_class("hybrid"), weights=[0.5, 0.5], components=[
        {"name": "stamp", "params": {"embedding": 6, "batch_size": 4, "n_epochs": 1,
                                     "progress": False}, "normalise": "softmax"},
        {"name": "sknn", "normalise": "max"}]),
    *(functools.partial(get_model_class("gru4rec-tan"), **{
        "embedding": 6, "hidden": 8, "batch_size": 4, "n_epochs": 2, "progress": False,
        **extra})
      for extra in ({}, {"augment": False, "item_dropout": 0.3, "finetune_fraction": 0.5,
                         "finetune_epochs": 1},
                    {"prediction": "embedding", "max_len": 2},
                    {"n_sample": 4, "loss": "bpr-max", "layers": 2, "dropout_hidden": 0.2})),
    *(functools.partial(get_model_class("rib"), **{
        "embedding": 6, "behaviour_dim": 3, "dwell_dim": 2, "hidden": 8, "batch_size": 4,
        "n_epochs": 2, "progress": False, **extra})
      for extra in ({}, {"attention": False, "behaviour_dim": 0, "n_sample": 4,
                         "loss": "top1-max", "max_len": 2})),
]


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("factory", MODEL_FACTORIES, ids=factory_id)
def test_contract(factory: ModelFactory, check, tmp_path: Path) -> None:
    check(factory, tmp_path)


def test_check_contract_runs_all_checks(tmp_path: Path) -> None:
    check_contract(ToyLastItemModel, tmp_path)
    assert len(list(tmp_path.iterdir())) == len(CONTRACT_CHECKS)


class _NoPopularityForEmpty(ToyLastItemModel):
    """Breaks the contract: empty prefixes get zeros instead of the popularity."""

    name = "test-toy-broken"

    def score(self, prefixes, users=None):
        out = super().score(prefixes, users)
        empty = [i for i, p in enumerate(prefixes) if not len(self._sanitize(p))]
        out[empty] = 0.0
        return out


def test_contract_catches_a_broken_model(tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        check_unknown_and_empty(_NoPopularityForEmpty, tmp_path)
