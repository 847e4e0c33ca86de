"""Every click-probability model fits, scores, saves and loads on a synthetic exposure log."""

from __future__ import annotations

import numpy as np
import pytest

from sessionrec.data.exposures.dataset import load_exposures
from sessionrec.data.exposures.prepare import ExposureConfig, get_exposure_source, prepare_exposures
from sessionrec.data.exposures.synth import write_sample
from sessionrec.models.neural.click import ClickRecommender, click_models

TINY = {"n_epochs": 1, "embedding": 8, "hidden": 8, "mlp": 8, "batch_size": 32,
        "progress": False}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("kuairand")
    raw = write_sample(root / "raw", users=80, per_user=15, seed=1)
    prepare_exposures(get_exposure_source("kuairand"), raw, root / "data", ExposureConfig())
    return load_exposures(root / "data")


def test_the_five_models_are_registered():
    assert {"alpine", "bpr-mf", "ncf", "lstm-r", "atrank"} <= set(click_models())


@pytest.mark.parametrize("name", ["alpine", "bpr-mf", "ncf", "lstm-r", "atrank"])
def test_fit_score_save_load(name, sample, tmp_path):
    model = click_models()[name](**TINY).fit(sample)
    rows, scores = model.score_split(sample, "test")
    assert sorted(rows.tolist()) == np.flatnonzero(sample.split == 2).tolist()
    assert np.isfinite(scores).all()
    loaded = ClickRecommender.load(model.save(tmp_path / "m"))
    rows2, scores2 = loaded.score_split(sample, "test")
    assert np.array_equal(rows, rows2) and np.allclose(scores, scores2, atol=1e-6)
    assert model.fit_stats_["epochs"] == 1


def test_alpine_training_loss_falls(sample):
    model = click_models()["alpine"](**{**TINY, "n_epochs": 3, "patience": 0,
                                        "learning_rate": 0.01}).fit(sample)
    losses = [e["loss"] for e in model.fit_stats_["history"]["epochs"]]
    assert losses[2] < losses[0]
