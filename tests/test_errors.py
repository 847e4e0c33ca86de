"""Errors about an unknown name say which one and list the valid ones, closest first."""

from __future__ import annotations

import pytest

from sessionrec.config import load_config
from sessionrec.data.sources import get_source
from sessionrec.errors import ConfigError, valid_choices
from sessionrec.models.base import get_model_class
from sessionrec.runs import ModelConfig, RunConfig, build_model


def test_valid_choices_puts_the_closest_first() -> None:
    assert valid_choices("n_epoch", ["layers", "n_epochs", "loss"]) == (
        "did you mean 'n_epochs'? valid: n_epochs, layers, loss")
    assert valid_choices("zzz", ["b", "a", "b"]) == "valid: a, b"
    assert valid_choices("x", []) == "there are no valid choices"


def test_a_misspelled_model_parameter_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name="gru4rec", params={"n_epoch": 2}))
    text = str(err.value)
    assert "model 'gru4rec' has no parameter 'n_epoch'" in text
    assert "did you mean 'n_epochs'? valid: n_epochs," in text
    assert "batch_size" in text  # the whole list follows
    with pytest.raises(ConfigError, match=r"has no parameter 'kk' \(model.params.kk or "
                                          r"--param vsknn.kk\); did you mean 'k'\?"):
        build_model(ModelConfig(name="vsknn", params={"kk": 50}))


def test_unknown_model_source_and_config_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'gru4recc'; did you mean 'gru4rec'\?"):
        get_model_class("gru4recc")
    with pytest.raises(ConfigError, match=r"unknown source 'yoochose'; did you mean "
                                          r"'yoochoose'\? valid: yoochoose, "):
        get_source("yoochose")
    with pytest.raises(ConfigError, match=r"unknown config key eval.protocl \(did you mean "
                                          r"'protocol'\? valid: protocol, "):
        load_config(RunConfig, overrides=["eval.protocl=last-item"])


def test_unknown_metric_lists_the_metrics() -> None:
    from sessionrec.evaluation.metrics import parse_metric

    with pytest.raises(ValueError, match=r"unknown metric 'mmr@20' \(did you mean 'mrr'\? "
                                         r"valid: mrr, "):
        parse_metric("mmr@20")


def test_evaluate_refuses_a_param_of_a_model_not_evaluated(tmp_path) -> None:
    from sessionrec.runs import compare_models

    with pytest.raises(ConfigError, match=r"--param 'vsknn.k=5' names no model being evaluated; "
                                          r"write MODEL.KEY=VALUE with MODEL one of pop, sr"):
        compare_models(tmp_path, ["pop", "sr"], ["vsknn.k=5"], tmp_path / "out", "next-item",
                       "pessimistic", None)
