"""``max_steps``: GRU4Rec and HGRU4Rec stop after exactly that many optimiser steps, wherever
in an epoch the limit falls, and refuse a negative limit naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec


def _sessions() -> Sessions:
    """40 sessions of 4 events each for 8 users: 3 pairs per session, 120 pairs an epoch."""
    rng = np.random.default_rng(0)
    lists = [[int(i) for i in rng.integers(0, 10, 4)] for _ in range(40)]
    return Sessions.from_lists(lists, 10, users=[s % 8 for s in range(40)])


def _counting(cls: type) -> type:
    """``cls`` whose epochs count the steps they hand to the training loop."""

    class Counting(cls):
        def _epoch_steps(self, *args, **kwargs):
            for out in super()._epoch_steps(*args, **kwargs):
                self.steps_taken += 1
                yield out

    return Counting


def _fit(cls: type, **kw):
    params = {"layers": [8], "batch_size": 4, "n_sample": 0, "n_epochs": 3, "progress": False}
    if cls is HGRU4Rec:
        params["user_layers"] = [6]
    model = _counting(cls)(**{**params, **kw})
    model.steps_taken = 0
    model.fit(_sessions())
    return model


@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
def test_stops_after_exactly_max_steps_inside_the_first_epoch(cls):
    model = _fit(cls, max_steps=5)
    assert model.steps_taken == 5
    assert model.fit_stats_["steps"] == 5
    history = model.fit_stats_["history"]
    assert len(history["epochs"]) == 1 and history["stopped_at_step_limit"]
    assert history["epochs"][0]["cut_at_step_limit"]
    # 5 steps of at most 4 lanes: at most 20 of the epoch's 120 pairs
    assert 0 < model.fit_stats_["epochs_walked"] <= 20 / 120


@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
def test_a_limit_past_the_first_epoch_cuts_the_second(cls):
    per_epoch = _fit(cls, n_epochs=1).steps_taken
    model = _fit(cls, max_steps=per_epoch + 2)
    assert model.steps_taken == per_epoch + 2
    epochs = model.fit_stats_["history"]["epochs"]
    assert len(epochs) == 2
    assert "cut_at_step_limit" not in epochs[0] and epochs[1]["cut_at_step_limit"]
    assert 1 < model.fit_stats_["epochs_walked"] < 2


@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
def test_no_limit_trains_every_epoch(cls):
    per_epoch = _fit(cls, n_epochs=1).steps_taken
    model = _fit(cls, max_steps=0)
    assert model.steps_taken == 3 * per_epoch
    assert model.fit_stats_["epochs_walked"] == 3
    assert not model.fit_stats_["history"]["stopped_at_step_limit"]


@pytest.mark.parametrize("cls", [GRU4Rec, HGRU4Rec])
def test_negative_limit_is_refused_naming_the_parameter(cls):
    with pytest.raises(ConfigError, match="max_steps must be >= 0, got -1"):
        cls(max_steps=-1)
