"""The API with an experiment: routing by variant, logged answers, holdout, time window,
identity links, a failing variant, namespaced state, and configs refused at start-up.

The experiment serves "often bought together" (control, from the quickstart layout's cooc run)
against the GRU4Rec run of ``runs_root``, both on products 100..111; the event log is an
SQLite file in the test's folder.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from sessionrec.cli import main
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.experiments.assignment import HOLDOUT, assign
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.serving.app import create_app
from sessionrec.serving.baseline import load_baseline_bundle
from sessionrec.serving.settings import ServeSettings
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, settings

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def write_experiment(folder: Path, runs_root: Path, extra: str = "",
                     holdout: float = 0.0) -> Path:
    path = folder / "exp.toml"
    path.write_text(f"""[experiment]
name = "t"
salt = "pepper"
holdout = {holdout}
{extra}
[variants.control]
model = "often-bought-together"
weight = 0.5
[variants.gru]
model = "{(runs_root / 'runs' / 'gru4rec').as_posix()}"
weight = 0.5
""")
    return path


@contextlib.contextmanager
def app_with_experiment(folder: Path, path: Path, **kw):
    """(client, experiment config, event log url) of a running app serving the experiment
    config ``path``, its event log a SQLite file in ``folder``."""
    url = f"sqlite:///{(folder / 'events.db').as_posix()}"
    app = create_app(settings(experiment=str(path), event_log=url, **kw), store=MemoryStore())
    with TestClient(app) as client:
        yield client, load_experiment(path), url


@contextlib.contextmanager
def experiment_client(folder: Path, runs_root: Path, extra: str = "", holdout: float = 0.0,
                      **kw):
    """(client, experiment config, event log url) of a running app."""
    with app_with_experiment(folder, write_experiment(folder, runs_root, extra, holdout),
                             **kw) as got:
        yield got


def users_of(config, variant: str, n: int = 1) -> list[str]:
    """The first ``n`` user ids u0, u1, ... that the experiment assigns to ``variant``."""
    out = [f"u{i}" for i in range(1000) if assign(config, f"user:u{i}") == variant]
    return out[:n]


def frame(url: str):
    log = open_event_log(url)
    try:
        return log.read_frame("t")
    finally:
        log.close()


def router(client):
    return client.app.state.parts["reloader"]


@pytest.fixture
def exp(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root) as got:
        yield got


def test_each_user_gets_their_variants_model_and_every_answer_is_logged(exp):
    client, config, url = exp
    tags = {name: mw.bundle.tag for name, mw in router(client).variants.items()}
    assert tags["control"].startswith("cooc@") and tags["gru"].startswith("gru4rec@")
    answers = {}
    for user in users_of(config, "control", 2) + users_of(config, "gru", 2):
        for product in (100, 101):
            r = client.post("/v1/events", json={"session_id": f"s-{user}", "user_id": user,
                                                "product_id": product, "k": 3})
            assert r.status_code == 200
            body = r.json()
            variant = assign(config, f"user:{user}")
            assert (body["experiment"], body["variant"], body["model"]) == (
                "t", variant, tags[variant])
            assert len(body["recommendation_id"]) == 32 and not body["fallback"]
            assert len(body["Predictions"]) == 3
            answers[body["recommendation_id"]] = (user, variant, body["Predictions"])
    events = frame(url)
    recs = events.filter(kind="recommendation")
    assert recs.height == 8 and set(recs["recommendation_id"]) == set(answers)
    for row in recs.iter_rows(named=True):
        user, variant, predictions = answers[row["recommendation_id"]]
        assert (row["variant"], row["unit_id"], row["user_id"], row["session_id"]) == (
            variant, f"user:{user}", user, f"s-{user}")
        assert row["product_ids"] == [str(p) for p in predictions]
        assert row["fallback"] is False and row["orphan"] is False
    units = {f"user:{user}" for user, _, _ in answers.values()}
    assert sorted(events.filter(kind="assignment")["unit_id"]) == sorted(units)  # one per unit
    metrics = client.get("/metrics").text
    assert 'sessionrec_experiment_recommendations_total{variant="gru"} 4.0' in metrics
    assert 'sessionrec_experiment_assignments_total{variant="control"} 2.0' in metrics


def test_the_control_baseline_ranks_by_co_occurrence(exp):
    client, config, _ = exp
    user = users_of(config, "control")[0]
    r = client.post("/v1/events", json={"session_id": "s", "user_id": user, "product_id": 100,
                                        "k": 4, "exclude_seen": False})
    model = router(client).variants["control"].bundle.model
    counts = model.matrix[0].toarray()[0]  # item 0 is product 100
    popularity = model.popularity_.numpy()
    # By co-occurrence count with the clicked product, ties by popularity.
    ranked = sorted(range(12), key=lambda j: (-counts[j], -popularity[j], j))
    assert counts[ranked[3]] > 0  # the top 4 all co-occur with it
    assert r.json()["Predictions"] == [100 + j for j in ranked[:4]]


def test_variants_never_share_a_sessions_state(exp):
    client, config, _ = exp
    a, b = users_of(config, "control")[0], users_of(config, "gru")[0]
    for user in (a, b, a):
        client.post("/v1/events", json={"session_id": "same", "user_id": user,
                                        "product_id": 100})
    variants = router(client).variants
    assert variants["control"].store._sessions["same"][1].n_events == 2
    assert variants["gru"].store._sessions["same"][1].n_events == 1
    assert variants["control"].store is not variants["gru"].store


def test_an_anonymous_visitor_keeps_the_variant_of_the_last_user_of_their_device(exp):
    client, config, url = exp
    user = users_of(config, "gru")[0]
    # Before any login the device is the unit; pick a device the hash puts in control.
    device = next(f"d{i}" for i in range(1000) if assign(config, f"device:d{i}") == "control")
    r = client.post("/v1/events", json={"session_id": "s1", "device_id": device,
                                        "product_id": 100})
    assert r.json()["variant"] == "control"
    client.post("/v1/events", json={"session_id": "s2", "device_id": device, "user_id": user,
                                    "product_id": 100})
    r = client.post("/v1/events", json={"session_id": "s3", "device_id": device,
                                        "product_id": 101})
    assert r.json()["variant"] == "gru"  # the device now links to the user
    units = frame(url).filter(kind="recommendation")["unit_id"].to_list()
    assert units == [f"device:{device}", f"user:{user}", f"user:{user}"]
    r = client.post("/v1/events", json={"session_id": "s4", "product_id": 100})
    assert r.json()["variant"] == assign(config, "session:s4")  # no device: the session


def test_holdout_units_get_nothing_and_only_their_assignment_is_logged(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root, holdout=0.5) as (client, config, url):
        user = users_of(config, HOLDOUT)[0]
        for _ in range(2):
            r = client.post("/v1/events", json={"session_id": "s", "user_id": user,
                                                "product_id": 100})
            assert r.status_code == 200
            assert r.json() == {"Predictions": [], "model": "holdout", "fallback": False,
                                "reason": None, "state_reset": False, "experiment": "t",
                                "variant": HOLDOUT, "recommendation_id": None}
        events = frame(url)
        assert events["kind"].to_list() == ["assignment"]
        assert events["variant"].to_list() == [HOLDOUT]


def test_outside_the_time_window_control_answers_and_nothing_is_logged(tmp_path, runs_root):
    window = 'start = "2026-01-01T00:00:00Z"\nend = "2026-01-15T00:00:00Z"'
    with experiment_client(tmp_path, runs_root, window) as (client, config, url):
        user = users_of(config, "gru")[0]
        control_tag = router(client).variants["control"].bundle.tag
        for ts in (T0 - 1, T0 + 14 * 86400, "2027-01-01T00:00:00Z"):
            r = client.post("/v1/events", json={"session_id": "s", "user_id": user,
                                                "product_id": 100, "timestamp": ts})
            body = r.json()
            assert (body["experiment"], body["variant"], body["recommendation_id"]) == (
                None, None, None)
            assert body["model"] == control_tag
        assert frame(url).height == 0
        r = client.post("/v1/events", json={"session_id": "s", "user_id": user,
                                            "product_id": 100, "timestamp": T0})
        assert r.json()["variant"] == "gru"  # the event's own time lies in the window
        assert frame(url)["kind"].to_list() == ["assignment", "recommendation"]


def test_a_failing_variant_falls_back_to_control_without_a_5xx(exp):
    client, config, url = exp
    user = users_of(config, "gru")[0]
    model = router(client).variants["gru"].bundle.step.model

    def broken(*args):
        raise RuntimeError("the GPU melted")

    model.advance = broken
    r = client.post("/v1/events", json={"session_id": "s", "user_id": user, "product_id": 100,
                                        "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert (body["variant"], body["fallback"], body["reason"]) == (
        "gru", True, "variant_model_error")
    assert body["model"] == router(client).variants["control"].bundle.tag
    assert len(body["Predictions"]) == 3
    row = frame(url).filter(kind="recommendation").row(0, named=True)
    assert (row["variant"], row["fallback"]) == ("gru", True)
    metrics = client.get("/metrics").text
    assert 'sessionrec_experiment_variant_fallbacks_total{variant="gru"} 1.0' in metrics


def test_session_recommendations_and_end_follow_the_variant(exp):
    client, config, url = exp
    user = users_of(config, "gru")[0]
    client.post("/v1/events", json={"session_id": "s", "user_id": user, "product_id": 100})
    r = client.get("/v1/sessions/s/recommendations", params={"user_id": user, "k": 2})
    body = r.json()
    assert r.status_code == 200 and body["variant"] == "gru" and body["events"] == 1
    assert len(body["Predictions"]) == 2 and body["recommendation_id"]
    other = users_of(config, "control")[0]
    assert client.get("/v1/sessions/s/recommendations",
                      params={"user_id": other}).status_code == 404  # not in control
    assert client.post("/v1/sessions/s/end").json() == {"session_id": "s", "ended": True}
    assert client.get("/v1/sessions/s/recommendations",
                      params={"user_id": user}).status_code == 404
    assert frame(url).filter(kind="recommendation").height == 2


def test_experiment_summary(exp):
    client, _, _ = exp
    r = client.get("/v1/experiment")
    assert r.status_code == 200
    body = r.json()
    assert (body["name"], body["unit"], body["holdout"], body["control"], body["active"]) == (
        "t", "user", 0.0, "control", True)
    control, gru = body["variants"]
    assert control == {"name": "control", "model": "often-bought-together", "weight": 0.5,
                       "traffic_share": 0.5,
                       "serving": router(client).variants["control"].bundle.tag,
                       "placements": ["product_page", "basket", "home"]}
    assert (gru["name"], gru["weight"], gru["serving"][:8]) == ("gru", 0.5, "gru4rec@")
    assert gru["model"] == "gru4rec"  # its name: file-system paths only behind the admin token
    assert "runs/" not in r.text and "salt" not in body and "pepper" not in r.text


def test_without_an_experiment_nothing_changes(runs_root):
    app = create_app(settings(model=str(runs_root / "runs" / "gru4rec")), store=MemoryStore())
    with TestClient(app) as client:
        r = client.post("/v1/events", json={"session_id": "s", "product_id": 100,
                                            "device_id": "d"})
        assert set(r.json()) == {"Predictions", "model", "fallback", "reason", "state_reset"}
        assert client.post("/v1/feedback/clicks", json={}).status_code == 404
        assert client.get("/v1/experiment").status_code == 404


def test_a_config_that_does_not_validate_is_refused_at_start_up(tmp_path, runs_root, capsys):
    text = write_experiment(tmp_path, runs_root).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("weight = 0.5\n[variants.gru]", "weight = 0.6\n[variants.gru]"))
    assert main(["serve", "--experiment", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"experiment config {bad}: variants.*.weight: weights must sum to 1" in err
    app = create_app(settings(experiment=str(bad)), store=MemoryStore())
    with pytest.raises(ConfigError, match="weights must sum to 1"), TestClient(app):
        pass


def test_settings_of_an_experiment():
    s = ServeSettings.from_env({"SESSIONREC_EXPERIMENT": "exp/e.toml"})
    assert (s.model, s.experiment, s.event_log_url(s.experiment)) == (
        "", "exp/e.toml", "sqlite:///exp/events.db")
    s = ServeSettings.from_env({"SESSIONREC_EXPERIMENT": "e.toml",
                                "SESSIONREC_EVENT_LOG": "sqlite:///x.db"})
    assert s.event_log_url(s.experiment) == "sqlite:///x.db"
    with pytest.raises(ConfigError, match=r"or --experiment EXP\.toml"):
        ServeSettings.from_env({})


def test_variant_state_and_device_links_in_redis(tmp_path, runs_root, redis_url, redis_prefix):
    import redis

    path = write_experiment(tmp_path, runs_root)
    config = load_experiment(path)
    url = f"sqlite:///{(tmp_path / 'events2.db').as_posix()}"
    app = create_app(settings(experiment=str(path), event_log=url, store=redis_url,
                              redis_prefix=redis_prefix))
    user = users_of(config, "gru")[0]
    with TestClient(app) as client:
        client.post("/v1/events", json={"session_id": "s", "user_id": user, "device_id": "d",
                                        "product_id": 100})
        r = client.post("/v1/events", json={"session_id": "s2", "device_id": "d",
                                            "product_id": 100})
        assert r.json()["variant"] == "gru"
    keys = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(f"{redis_prefix}*")}
    assert f"{redis_prefix}x:t:gru:s:s" in keys and f"{redis_prefix}x:t:gru:s:s2" in keys
    assert f"{redis_prefix}d:d" in keys and not any(":control:s:" in k for k in keys)


def test_the_popular_baseline_ranks_by_training_popularity(runs_root):
    bundle = load_baseline_bundle("pop", runs_root / "runs" / "cooc")
    popularity = bundle.model.popularity_.numpy()
    _, top, _ = bundle.step.step(bundle.step.start_states(None, 1), np.array([0]), 12,
                                 [np.zeros(0, dtype=np.int64)])
    assert top[0].tolist() == sorted(range(12), key=lambda j: (-popularity[j], j))
    assert bundle.tag.startswith("pop@") and bundle.step.state_size == 1
    with pytest.raises(SessionRecError, match="not an item-to-item model"):
        load_baseline_bundle("cooc", runs_root / "runs" / "gru4rec")


def test_ids_that_no_log_can_store_are_422(exp):
    client, _, url = exp
    for body in ({"session_id": "a\x00b", "product_id": 100},
                 {"session_id": "s", "user_id": "\ud800", "product_id": 100}):
        r = client.post("/v1/events", content=json.dumps(body),  # ASCII: "\ud800" escaped
                        headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
    assert frame(url).height == 0


def test_admin_reload_rereads_every_variant(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root, admin_token="secret") as (client, _, _):
        auth = {"Authorization": "Bearer secret"}
        before = {n: mw.bundle for n, mw in router(client).variants.items()}
        r = client.post("/admin/reload", headers=auth)
        assert r.status_code == 200 and r.json()["tag"] == before["control"].tag
        after = {n: mw.bundle for n, mw in router(client).variants.items()}
        assert all(after[n] is not before[n] and after[n].tag == before[n].tag for n in before)
        r = client.post("/admin/reload", headers=auth, json={"model": "runs/other"})
        assert r.status_code == 400 and "reload without a body" in r.json()["detail"]
