"""Hybrids: per-case normalisation, weighted and cascade combinations, weights chosen on the
valid split, vocabulary checks, configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sessionrec.config import load_config
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.evaluation.evaluator import evaluate
from sessionrec.models.base import SessionRecommender
from sessionrec.models.combine import cascade, normalise, pessimistic_ranks, weighted
from sessionrec.models.hybrid import Hybrid, simplex_grid
from sessionrec.runs import RunConfig, build_model

MARKOV = {"name": "markov"}
POP = {"name": "pop"}


def test_normalise_per_row_by_hand() -> None:
    s = torch.tensor([[1.0, 3.0, 2.0], [2.0, 2.0, 2.0]])
    assert normalise(s, "minmax").tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    assert normalise(torch.tensor([[2.0, 4.0, 0.0]]), "max").tolist() == [[0.5, 1.0, 0.0]]
    soft = normalise(torch.tensor([[0.0, np.log(3.0)]]), "softmax")
    torch.testing.assert_close(soft, torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    with pytest.raises(ConfigError, match="unknown normalisation 'zscore'"):
        normalise(s, "zscore")


def test_weighted_sum_by_hand() -> None:
    a = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64)
    assert weighted([a, b], [0.25, 0.75]).tolist() == [[0.75, 0.25, 0.5]]


def test_weighted_leaves_its_inputs_alone_and_skips_zero_weights() -> None:
    a = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0, 0.5]], dtype=torch.float64)
    c = torch.tensor([[4.0, 4.0, 4.0]], dtype=torch.float64)
    assert weighted([a, b, c], [1.0, 0.5, 0.0]).tolist() == [[0.5, 1.0, 0.75]]
    assert weighted([a, b, c], [0.0, 0.0, 0.0]).tolist() == [[0.0, 0.0, 0.0]]
    assert a.tolist() == [[0.0, 1.0, 0.5]] and b.tolist() == [[1.0, 0.0, 0.5]]


def _order(scores: torch.Tensor) -> list[int]:
    return torch.sort(scores[0], descending=True, stable=True).indices.tolist()


def test_cascade_keeps_the_first_models_list_and_fills_with_the_second() -> None:
    knn = torch.tensor([[0.0, 3.0, 0.0, 1.0]])  # scores items 1 and 3 only
    rnn = torch.tensor([[0.9, 0.1, 0.5, 0.2]])
    assert _order(cascade([knn, rnn], depth=0)) == [1, 3, 0, 2]
    # a tie in the first model is broken by the second
    assert _order(cascade([torch.tensor([[0.0, 2.0, 0.0, 2.0]]), rnn], depth=0)) == [3, 1, 0, 2]
    # depth 1: only the first model's best item is placed first
    assert _order(cascade([knn, rnn], depth=1)) == [1, 0, 2, 3]
    out = cascade([knn, rnn], depth=0)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_pessimistic_ranks_count_ties_against_the_target() -> None:
    scores = torch.tensor([[0.5, 0.5, 0.1], [0.1, 0.9, 0.3]])
    assert pessimistic_ranks(scores, torch.tensor([0, 2])).tolist() == [2, 2]


def test_simplex_grid() -> None:
    assert simplex_grid(2, 2) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    assert len(simplex_grid(3, 10)) == 66


# Training: 0 -> 1 three times, so markov predicts 1 after 0; item 2 is the most popular.
TRAIN = [[0, 1], [0, 1], [0, 1], [2, 2, 2, 2, 3], [2, 3, 2, 2]]
# Valid: the next item after 0 is 1 (markov right, popularity wrong).
VALID = [[0, 1], [0, 1]]


def _splits(vocab: str = "v1") -> tuple[Sessions, Sessions]:
    train = dataclasses.replace(Sessions.from_lists(TRAIN, 4), vocab=vocab)
    valid = dataclasses.replace(Sessions.from_lists(VALID, 4), vocab=vocab)
    return train, valid


def test_weights_are_chosen_on_valid_by_hand() -> None:
    train, valid = _splits()
    model = Hybrid(components=[MARKOV, POP], grid=1).fit(train, valid)
    # (0, 1) = popularity alone ranks 1 third after 0 (scores 2: 7, 1: 3, 3: 2, 0: 3 ->
    # item 1 ties with item 0 at 3, pessimistic rank 3): MRR 1/3; (1, 0) = markov: rank 1.
    assert model.weights_ == [1.0, 0.0]
    table = {tuple(r["weights"]): r["mrr@20"] for r in model.fit_stats_["weights_on_valid"]}
    assert table == {(0.0, 1.0): pytest.approx(1 / 3), (1.0, 0.0): 1.0}


def test_chosen_weights_are_the_evaluators_best_grid_point() -> None:
    rng = np.random.default_rng(0)
    sessions = [list(rng.integers(0, 6, size=rng.integers(2, 6))) for _ in range(40)]
    train = Sessions.from_lists(sessions[:30], 6)
    valid = Sessions.from_lists(sessions[30:], 6)
    hybrid = Hybrid(components=[{"name": "sr"}, {"name": "pop"}, {"name": "sknn"}], grid=4,
                    select="recall@2").fit(train, valid)
    best = max(simplex_grid(3, 4), key=lambda w: evaluate(
        Hybrid(components=[{"name": "sr"}, {"name": "pop"}, {"name": "sknn"}],
               weights=list(w)).fit(train), train, valid, ks=(2,)).metrics()["recall@2"])
    got = evaluate(hybrid, train, valid, ks=(2,)).metrics()["recall@2"]
    want = evaluate(Hybrid(components=[{"name": "sr"}, {"name": "pop"}, {"name": "sknn"}],
                           weights=list(best)).fit(train), train, valid,
                    ks=(2,)).metrics()["recall@2"]
    assert got == pytest.approx(want)


def test_no_weights_and_no_valid_is_refused() -> None:
    train, _ = _splits()
    with pytest.raises(ConfigError, match="no weights given and no valid split"):
        Hybrid(components=[MARKOV, POP]).fit(train)


def _saved(tmp_path: Path, name: str, vocab: str, n_items: int = 4) -> Path:
    train = dataclasses.replace(Sessions.from_lists(TRAIN, n_items), vocab=vocab)
    return build_model_named("markov").fit(train).save(tmp_path / name)


def build_model_named(name: str) -> SessionRecommender:
    from sessionrec.models.base import get_model_class

    return get_model_class(name)()


def test_components_from_runs_with_other_vocabularies_are_refused(tmp_path: Path) -> None:
    a, b = _saved(tmp_path, "a", "4:aaaa"), _saved(tmp_path, "b", "4:bbbb")
    train, _ = _splits("4:aaaa")
    hybrid = Hybrid(components=[{"run": str(a)}, {"run": str(b)}], weights=[0.5, 0.5])
    with pytest.raises(SessionRecError, match=r"4:aaaa.*4:bbbb"):
        hybrid.fit(train)
    with pytest.raises(SessionRecError, match=r"4:bbbb.*4:cccc"):
        Hybrid(components=[{"run": str(b)}, POP], weights=[0.5, 0.5]).fit(_splits("4:cccc")[0])


def test_components_from_runs_score_like_the_runs(tmp_path: Path) -> None:
    train, _ = _splits()
    a = _saved(tmp_path, "a", "v1")
    hybrid = Hybrid(components=[{"run": str(a)}, POP], weights=[1.0, 0.0]).fit(train)
    markov = SessionRecommender.load(a)
    prefixes = [[0], [2, 3]]
    torch.testing.assert_close(hybrid.score(prefixes), normalise(
        markov.score(prefixes), "minmax").float())
    loaded = SessionRecommender.load(hybrid.save(tmp_path / "hybrid"))
    torch.testing.assert_close(loaded.score(prefixes), hybrid.score(prefixes))


def test_bad_specifications_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 2 components"):
        Hybrid(components=[MARKOV])
    with pytest.raises(ConfigError, match="exactly one of 'name'"):
        Hybrid(components=[MARKOV, {"name": "pop", "run": "x"}])
    with pytest.raises(ConfigError, match="unknown key 'parms'"):
        Hybrid(components=[MARKOV, {"name": "pop", "parms": {}}])
    with pytest.raises(ConfigError, match="unknown model 'vsknnn'"):
        Hybrid(components=[MARKOV, {"name": "vsknnn"}])
    with pytest.raises(ConfigError, match="2 weights for 3 components"):
        Hybrid(components=[MARKOV, POP, POP], weights=[0.5, 0.5])
    with pytest.raises(ConfigError, match="unknown hybrid method"):
        Hybrid(components=[MARKOV, POP], method="switch")


def test_a_hybrid_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "hybrid.toml"
    path.write_text("""
[model]
name = "hybrid"
[model.params]
method = "weighted"
weights = [0.7, 0.3]
[[model.params.components]]
name = "vsknn"
params = {k = 50, sample_size = 100}
[[model.params.components]]
name = "markov"
normalise = "max"
""", encoding="utf-8")
    model = build_model(load_config(RunConfig, path).model)
    assert isinstance(model, Hybrid)
    assert model.specs[0]["params"] == {"k": 50, "sample_size": 100}
    assert model.specs[1]["normalise"] == "max"
    train, _ = _splits()
    assert tuple(model.fit(train).score([[0]]).shape) == (1, 4)


def test_a_hybrid_config_is_written_back_as_toml() -> None:
    import tomllib

    from sessionrec.config import dump_toml

    data = {"model": {"name": "hybrid", "params": {"weights": [0.5, 0.5], "components": [
        {"name": "vsknn", "params": {"k": 50}}, {"run": "runs/x", "normalise": "max"}]}}}
    assert tomllib.loads(dump_toml(data)) == data
