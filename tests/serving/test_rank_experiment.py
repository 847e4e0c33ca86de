"""POST /v1/rank under an experiment: the visitor's variant ranks (the same variant as on
/v1/events), every answer is logged, clicks on ranked candidates are attributed, a failing
variant answers in request order, and misconfigured rank models are refused at start-up.

The experiment serves "often bought together" with ``rank_model = "request-order"`` (control)
against GRU4Rec with a tiny ALPINE click model (variant ``alpine``); the event log is an SQLite
file in the test's folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import polars as pl
import pytest

from sessionrec.data.exposures.dataset import load_exposures
from sessionrec.data.exposures.prepare import ExposureConfig, get_exposure_source, prepare_exposures
from sessionrec.data.exposures.synth import write_sample
from sessionrec.errors import ConfigError
from sessionrec.experiments.assignment import assign
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.models.neural.click import click_models
from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, settings
from .test_experiment_api import app_with_experiment, users_of

CANDIDATES = ["nope", "1", "2", "3", "5"]


@pytest.fixture(scope="module")
def click_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny ALPINE and LSTM-R click models trained on one synthetic exposure sample."""
    root = tmp_path_factory.mktemp("rank-exp")
    write_sample(root / "raw", users=40, per_user=10)
    prepare_exposures(get_exposure_source("kuairand"), root / "raw", root / "data",
                      ExposureConfig())
    data = load_exposures(root / "data")
    out = {}
    for name in ("alpine", "lstm-r"):
        model = click_models()[name](n_epochs=1, embedding=8, hidden=8, mlp=8, batch_size=16,
                                     progress=False).fit(data)
        out[name] = model.save(root / name / "model").parent  # a run directory
    return out


def write_experiment(folder: Path, runs_root: Path, control_rank: str, variant_rank: str,
                     name: str = "exp.toml") -> Path:
    path = folder / name
    gru = (runs_root / "runs" / "gru4rec").as_posix()
    control = "" if control_rank is None else f'rank_model = "{control_rank}"\n'
    variant = "" if variant_rank is None else f'rank_model = "{variant_rank}"\n'
    path.write_text(f"""[experiment]
name = "t"
salt = "pepper"

[variants.control]
model = "often-bought-together"
weight = 0.5
{control}
[variants.alpine]
model = "{gru}"
weight = 0.5
{variant}""")
    return path


@contextlib.contextmanager
def running(folder: Path, runs_root: Path, control_rank, variant_rank, **kw):
    """(client, experiment config, event log url) of a running app."""
    path = write_experiment(folder, runs_root, control_rank, variant_rank)
    with app_with_experiment(folder, path, **kw) as got:
        yield got


def rows(url: str, kind: str):
    with open_event_log(url) as log:
        return log.read_frame("t").filter(kind=kind)


@pytest.fixture
def exp(tmp_path, runs_root, click_runs):
    with running(tmp_path, runs_root, "request-order", click_runs["alpine"].as_posix()) as got:
        yield got


def test_a_user_gets_the_same_variant_on_events_and_rank_and_each_answer_is_logged(exp):
    client, config, url = exp
    answers = {}
    for user in users_of(config, "control", 2) + users_of(config, "alpine", 2):
        event = client.post("/v1/events", json={"session_id": f"s-{user}", "user_id": user,
                                                 "product_id": 100, "k": 3}).json()
        r = client.post("/v1/rank", json={"user_id": user, "candidates": CANDIDATES})
        assert r.status_code == 200, r.text
        got = r.json()
        variant = assign(config, f"user:{user}")
        assert got["variant"] == event["variant"] == variant and got["experiment"] == "t"
        assert len(got["recommendation_id"]) == 32 and got["fallback"] is False
        order = [i["product_id"] for i in got["items"]]
        assert order[-1] == "nope" and not got["items"][-1]["known"]
        if variant == "control":  # request order: known candidates, then unknown, no scores
            assert got["model"] == "request-order" and order == ["1", "2", "3", "5", "nope"]
            assert all(i["score"] is None for i in got["items"])
        else:
            assert got["model"] == "alpine"
            scores = [i["score"] for i in got["items"][:-1]]
            assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
        answers[got["recommendation_id"]] = (user, variant, got["model"], order)
    ranked = rows(url, "recommendation").filter(placement="rank")
    assert ranked.height == 4 and set(ranked["recommendation_id"]) == set(answers)
    for row in ranked.iter_rows(named=True):
        user, variant, model, order = answers[row["recommendation_id"]]
        assert (row["variant"], row["unit_id"], row["user_id"], row["model"]) == (
            variant, f"user:{user}", user, model)
        assert row["product_ids"] == order and row["fallback"] is False
    # one assignment row per unit, shared by both endpoints
    assert rows(url, "assignment").height == 4


def test_a_click_behaviour_on_a_ranked_candidate_is_attributed_once(exp):
    client, config, url = exp
    user = users_of(config, "alpine")[0]
    first = client.post("/v1/rank", json={"user_id": user, "candidates": ["1", "2"]}).json()
    latest = client.post("/v1/rank", json={"user_id": user, "candidates": ["3", "2"]}).json()
    click = {"user_id": user, "product_id": "2", "behaviour": "click"}
    for _ in range(2):  # a retried behaviour is logged once
        r = client.post("/v1/behaviours", json=click)
        assert r.status_code == 200 and r.json()["recommendation_id"] == latest[
            "recommendation_id"]
    # naming the answer attributes the click to it; a product never ranked attributes nothing
    r = client.post("/v1/behaviours", json={**click, "recommendation_id":
                                            first["recommendation_id"]})
    assert r.json()["recommendation_id"] == first["recommendation_id"]
    none = client.post("/v1/behaviours", json={**click, "product_id": "7"}).json()
    assert none["recommendation_id"] is None
    impression = client.post("/v1/behaviours", json={**click, "behaviour": "impression"})
    assert impression.json()["recommendation_id"] is None
    clicks = rows(url, "click").sort("seq")
    assert clicks.select("recommendation_id", "variant", "unit_id").rows() == [
        (latest["recommendation_id"], "alpine", f"user:{user}"),
        (first["recommendation_id"], "alpine", f"user:{user}")]
    assert clicks["product_ids"].to_list() == [["2"], ["2"]]
    # the report's rank KPI reads them: "2" was ranked somewhere in each two-product list
    from sessionrec.experiments.rank_kpis import rank_lists

    with open_event_log(url) as log:
        lists = rank_lists(log.read_frame("t")).sort("recommendation_id")
    assert lists.filter(pl.col("recommendation_id").is_in(
        [first["recommendation_id"], latest["recommendation_id"]]))["clicks"].to_list() == [1, 1]
    positions = {a["recommendation_id"]: [i["product_id"] for i in a["items"]].index("2") + 1
                 for a in (first, latest)}
    assert lists["reciprocal_positions"].sum() == pytest.approx(
        sum(1 / p for p in positions.values()))


def test_a_failing_variant_model_answers_in_request_order_and_is_counted(exp, monkeypatch):
    client, config, url = exp
    ranking = client.app.state.parts["rank"]

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(ranking.arms["alpine"].ranker, "scores", broken)
    user = users_of(config, "alpine")[0]
    got = client.post("/v1/rank", json={"user_id": user, "candidates": ["x", "3", "1"]}).json()
    assert (got["variant"], got["model"], got["fallback"], got["reason"]) == (
        "alpine", "alpine", True, "model_error")
    assert [(i["product_id"], i["known"]) for i in got["items"]] == [
        ("3", True), ("1", True), ("x", False)]
    row = rows(url, "recommendation").filter(recommendation_id=got["recommendation_id"])
    assert row["fallback"].to_list() == [True] and row["product_ids"].to_list() == [
        ["3", "1", "x"]]
    metrics = client.get("/metrics").text
    assert 'sessionrec_fallbacks_total{reason="model_error"} 1.0' in metrics
    assert 'sessionrec_experiment_variant_fallbacks_total{variant="alpine"} 1.0' in metrics


def test_variants_without_rank_model_use_the_servers_rank_model(tmp_path, runs_root,
                                                                  click_runs):
    lstm = click_runs["lstm-r"].as_posix()
    with running(tmp_path, runs_root, None, click_runs["alpine"].as_posix(),
                 rank_model=lstm) as (client, config, _):
        user = users_of(config, "control")[0]
        got = client.post("/v1/rank", json={"user_id": user, "candidates": ["1"]}).json()
        assert (got["variant"], got["model"]) == ("control", "lstm-r")


def _refused(tmp_path, runs_root, control_rank, variant_rank, match, **kw):
    path = write_experiment(tmp_path, runs_root, control_rank, variant_rank)
    app = create_app(settings(experiment=str(path),
                              event_log=f"sqlite:///{(tmp_path / 'e.db').as_posix()}", **kw),
                     store=MemoryStore())
    with pytest.raises(ConfigError, match=match), TestClient(app):
        pass


def test_a_rank_model_that_is_not_a_click_model_is_refused_naming_variant_and_path(
        tmp_path, runs_root):
    gru = (runs_root / "runs" / "gru4rec").as_posix()
    _refused(tmp_path, runs_root, "request-order", gru,
             rf"variants\.alpine\.rank_model: '{gru}' \({gru}\) holds a 'gru4rec' model, not a "
             "click-probability model")
    _refused(tmp_path, runs_root, "request-order", "no/such/run",
             r"variants\.alpine\.rank_model: 'no/such/run': no such directory")


def test_a_variant_without_any_rank_model_is_refused_naming_it(tmp_path, runs_root,
                                                                click_runs):
    _refused(tmp_path, runs_root, None, click_runs["alpine"].as_posix(),
             "variant 'control' has no rank_model and SESSIONREC_RANK_MODEL is not set")


def test_an_empty_rank_model_and_unknown_keys_are_refused(tmp_path, runs_root):
    path = write_experiment(tmp_path, runs_root, "", "request-order")
    with pytest.raises(ConfigError, match=r"variants\.control\.rank_model: expected a "):
        load_experiment(path, check_models=False)
    path.write_text(path.read_text().replace("rank_model", "rank_modle", 1))
    with pytest.raises(ConfigError, match="rank_modle"):
        load_experiment(path, check_models=False)
