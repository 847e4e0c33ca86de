"""The shared set-up of ``sessionrec evaluate`` for session and click models: one RunConfig
per model from ``--param MODEL.KEY=VALUE`` options, built before anything is fitted."""

from __future__ import annotations

import pytest

from sessionrec.errors import ConfigError
from sessionrec.runs import model_configs, run_each


def test_each_model_gets_its_own_params_and_the_shared_eval_settings() -> None:
    configs = model_configs(["vsknn", "sr"], ["vsknn.k=50", "sr.steps=3", "vsknn.sample_size=9"],
                            ["eval.protocol=last-item", "eval.ties=optimistic"])
    assert [name for name, _ in configs] == ["vsknn", "sr"]
    vsknn, sr = (cfg for _, cfg in configs)
    assert (vsknn.model.name, vsknn.model.params) == ("vsknn", {"k": 50, "sample_size": 9})
    assert (sr.model.name, sr.model.params) == ("sr", {"steps": 3})
    assert {(c.eval.protocol, c.eval.ties) for c in (vsknn, sr)} == {("last-item", "optimistic")}


def test_a_param_for_no_model_or_a_bad_value_fails_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match=r"--param 'stan.k=5' names no model being evaluated"):
        model_configs(["pop", "sr"], ["stan.k=5"], [])
    with pytest.raises(ConfigError, match=r"--param 'k' names no model"):
        model_configs(["pop"], ["k"], [])
    with pytest.raises(ConfigError, match=r"^--set eval.ties=maybe: eval.ties: 'maybe' is not one"):
        model_configs(["pop"], [], ["eval.ties=maybe"])


def test_run_each_runs_in_order_and_reports_each_payload() -> None:
    seen = []
    payloads = run_each([("a", None), ("b", None)], lambda name, cfg: {"model": name},
                        on_run=lambda p: seen.append(p["model"]))
    assert payloads == [{"model": "a"}, {"model": "b"}] and seen == ["a", "b"]
