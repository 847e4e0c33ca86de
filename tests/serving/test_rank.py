"""POST /v1/rank and /v1/behaviours: ordering, unknown candidates, refusals, both stores."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sessionrec.data.exposures.dataset import load_exposures
from sessionrec.data.exposures.prepare import ExposureConfig, get_exposure_source, prepare_exposures
from sessionrec.data.exposures.synth import write_sample
from sessionrec.models.neural.click import click_models
from sessionrec.serving.rank import create_rank_app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    write_sample(root / "raw", users=40, per_user=10)
    prepare_exposures(get_exposure_source("kuairand"), root / "raw", root / "data",
                      ExposureConfig())
    data = load_exposures(root / "data")
    model = click_models()["alpine"](n_epochs=1, embedding=8, hidden=8, mlp=8, batch_size=16,
                                     progress=False).fit(data)
    return str(model.save(root / "model"))


def client(model_dir, **kw):
    return TestClient(create_rank_app(model_dir, max_candidates=5, **kw))


def test_candidates_ordered_by_score_unknown_last(model_dir):
    c = client(model_dir)
    r = c.post("/v1/rank", json={"user_id": "3", "candidates": ["nope", "1", "2", "x", "5"]})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["product_id"] for i in items[-2:]] == ["nope", "x"]  # request order kept
    assert all(not i["known"] and i["score"] is None for i in items[-2:])
    scores = [i["score"] for i in items[:3]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)


@pytest.mark.parametrize("candidates, message", [
    ([], "candidates is empty"),
    (["1", "2", "3", "4", "5", "6"], "has 6 ProductIds; at most 5"),
    (["1", "2", "1"], "repeats ProductId '1' (position 2)"),
])
def test_bad_candidate_lists_are_refused(model_dir, candidates, message):
    r = client(model_dir).post("/v1/rank", json={"user_id": "3", "candidates": candidates})
    assert r.status_code == 422 and message in r.json()["detail"]


def test_unknown_behaviour_is_refused(model_dir):
    r = client(model_dir).post("/v1/behaviours", json={"user_id": "u", "product_id": "1",
                                                       "behaviour": "purchase"})
    assert r.status_code == 422


def _history_changes_scores(c):
    body = {"user_id": "new-user", "candidates": ["1", "2", "3"]}
    before = {i["product_id"]: i["score"] for i in c.post("/v1/rank", json=body).json()["items"]}
    for pid, kind in (("1", "click"), ("2", "impression"), ("1", "like"), ("9999", "click")):
        r = c.post("/v1/behaviours", json={"user_id": "new-user", "product_id": pid,
                                            "behaviour": kind, "ts": 1_700_000_000.0})
        assert r.status_code == 200 and r.json()["known"] == (pid != "9999")
    after = {i["product_id"]: i["score"] for i in c.post("/v1/rank", json=body).json()["items"]}
    assert before != after
    return c


def test_behaviours_change_the_ranking_memory(model_dir):
    with client(model_dir) as c:
        _history_changes_scores(c)
        assert c.app.state.histories.describe().startswith("memory (1 users)")


def test_behaviours_change_the_ranking_redis(model_dir, redis_url, redis_prefix):
    import redis

    with client(model_dir, store=redis_url, prefix=redis_prefix) as c:  # one event loop
        _history_changes_scores(c)
    keys = sorted(k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(
        f"{redis_prefix}hist:new-user:*"))
    assert keys == [f"{redis_prefix}hist:new-user:{b}" for b in ("click", "like", "skip")]


def test_rank_model_setting_mounts_the_routes_on_the_main_app(model_dir):
    from sessionrec.serving.app import create_app
    from sessionrec.serving.store import MemoryStore

    from .helpers import make_bundle, settings

    app = create_app(settings(rank_model=model_dir, max_candidates=2), bundle=make_bundle(),
                     store=MemoryStore(1800, 86400))
    with TestClient(app) as c:
        r = c.post("/v1/rank", json={"user_id": "u", "candidates": ["1", "2", "3"]})
        assert r.status_code == 422 and "at most 2" in r.json()["detail"]
        assert c.post("/v1/rank", json={"user_id": "u", "candidates": ["1"]}).status_code == 200


class _DownHistories:
    """A history store whose server is gone: every call fails as a dropped connection does."""

    async def append(self, user, behaviour, item, ts_us):
        raise ConnectionError("connection refused")

    async def get(self, user):
        raise ConnectionError("connection refused")

    async def close(self):
        pass

    def describe(self):
        return "down"


def _rank_app(model_dir, histories):
    from fastapi import FastAPI

    from sessionrec.serving.metrics import Metrics
    from sessionrec.serving.rank import load_ranker, rank_router

    app, metrics = FastAPI(), Metrics()
    ranker = load_ranker(model_dir)
    app.include_router(rank_router(ranker, histories, 5, metrics=metrics))
    return app, metrics, ranker


def _sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_store_down_ranks_from_an_empty_history_and_says_so(model_dir):
    from sessionrec.serving.histories import MemoryHistories

    app, metrics, _ = _rank_app(model_dir, _DownHistories())
    body = {"user_id": "new-user", "candidates": ["1", "nope", "2", "3"]}
    r = TestClient(app).post("/v1/rank", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["fallback"] is True and got["reason"] == "store_unavailable"
    # Same order and scores as a working store holding no history for this user.
    healthy, _, _ = _rank_app(model_dir, MemoryHistories(50))
    want = TestClient(healthy).post("/v1/rank", json=body).json()
    assert want["fallback"] is False and want["reason"] is None
    assert got["items"] == want["items"]
    assert _sample(metrics, "sessionrec_fallbacks_total", reason="store_unavailable") == 1
    assert _sample(metrics, "sessionrec_store_errors_total", op="history_get") == 1


def test_behaviour_that_cannot_be_stored_is_refused_not_dropped(model_dir):
    app, metrics, _ = _rank_app(model_dir, _DownHistories())
    r = TestClient(app).post("/v1/behaviours", json={"user_id": "u", "product_id": "1",
                                                     "behaviour": "click"})
    assert r.status_code == 503 and "behaviour store unavailable" in r.json()["detail"]
    assert r.headers["retry-after"] == "1"
    assert _sample(metrics, "sessionrec_store_errors_total", op="history_append") == 1


def test_model_failure_answers_in_request_order(model_dir, monkeypatch):
    from sessionrec.serving.histories import MemoryHistories

    app, metrics, ranker = _rank_app(model_dir, MemoryHistories(50))

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(ranker, "scores", broken)
    r = TestClient(app).post("/v1/rank", json={"user_id": "u", "candidates": ["x", "3", "1"]})
    assert r.status_code == 200
    got = r.json()
    assert got["fallback"] is True and got["reason"] == "model_error"
    assert [(i["product_id"], i["known"], i["score"]) for i in got["items"]] == [
        ("3", True, None), ("1", True, None), ("x", False, None)]
    assert _sample(metrics, "sessionrec_fallbacks_total", reason="model_error") == 1


def test_rank_app_from_env_names_the_missing_variable(monkeypatch):
    from sessionrec.errors import ConfigError
    from sessionrec.serving.rank import create_rank_app_from_env

    monkeypatch.delenv("SESSIONREC_RANK_MODEL", raising=False)
    with pytest.raises(ConfigError, match="SESSIONREC_RANK_MODEL is not set"):
        create_rank_app_from_env()
