"""The outside probe of issue 24, kept as tests: invalid-but-parseable JSON (non-finite and
huge numbers, huge bodies, deep nesting, booleans for integers) is a short 4xx, never a 5xx
or an echo; NaN-weight models are refused at load and reload and answered around when they
degrade live; every broken reload is a 400 naming the cause; paths need the admin token."""

from __future__ import annotations

import json
import pickle
import shutil
from argparse import Namespace

import numpy as np
import pytest
import torch

from sessionrec.cli import main
from sessionrec.models.base import CONFIG_FILE, WEIGHTS_FILE
from sessionrec.serving.app import create_app
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.health import ModelUnhealthy, answer_problem, smoke_items
from sessionrec.serving.limits import loads_strict
from sessionrec.serving.store import MemoryStore

from .helpers import E, TestClient, TinyRNN, make_bundle, settings
from .test_experiment_api import experiment_client
from .test_feedback_api import GOOD

AUTH = {"Authorization": "Bearer secret"}
JSON = {"content-type": "application/json"}
HUGE = "x" * 300_000  # over the default 256 KiB body limit
# Literals that parse (Python's json module reads all of them) but are not finite JSON data,
# or that a careless server would take for something else.
POISON = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 5000,
          "[" * 50_000 + "]" * 50_000, '{"a":' * 30_000 + "1" + "}" * 30_000,
          json.dumps(HUGE), "[" + ",".join(["1e999"] * 1000) + "]"]


def poisoned(body: dict) -> list[str]:
    """``body`` with each field (and one unknown field) replaced by each poison literal."""
    out = []
    for field in [*body, "unknown_field"]:
        for literal in POISON:
            values = {**body, field: "@@"}
            out.append(json.dumps(values).replace('"@@"', literal))
    return out


def assert_short_refusal(r, body: str) -> None:
    assert r.status_code in (413, 422), (r.status_code, r.text[:300], body[:200])
    assert len(r.content) < 2000, "a refusal must not echo the body"
    assert "xxxxxxxxxx" not in r.text


@pytest.fixture(scope="module")
def plain():
    app = create_app(settings(admin_token="secret"), bundle=make_bundle(), store=MemoryStore())
    with TestClient(app) as client:
        yield client


EVENT = {"session_id": "s", "product_id": 10, "user_id": "u", "k": 2, "timestamp": 1.7e9,
         "exclude_seen": True}


def test_poisoned_events_and_reloads_are_short_4xx(plain):
    for body in poisoned(EVENT):
        assert_short_refusal(plain.post("/v1/events", content=body, headers=JSON), body)
    for body in poisoned({"model": "a", "vocab": "b", "fallback": "c"}):
        r = plain.post("/admin/reload", content=body, headers={**JSON, **AUTH})
        assert_short_refusal(r, body)
    for literal in POISON[:6]:  # a bare literal as the whole body
        assert_short_refusal(plain.post("/v1/events", content=literal, headers=JSON), literal)


def test_poisoned_feedback_is_short_4xx(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root) as (client, _, _):
        for endpoint, good in GOOD.items():
            good = {**good, "timestamp": 1.7e9}
            for body in poisoned(good):
                r = client.post(f"/v1/feedback/{endpoint}", content=body, headers=JSON)
                assert_short_refusal(r, body)
        r = client.post("/v1/feedback/purchases", headers=JSON,
                        content=json.dumps({**GOOD["purchases"], "prices": "@"}).replace(
                            '"@"', "[NaN]"))
        assert r.status_code == 422 and "NaN" in r.text
        for body in poisoned({"session_id": "s", "product_id": 100, "device_id": "d"}):
            assert_short_refusal(client.post("/v1/events", content=body, headers=JSON), body)


def test_strict_json_names_the_problem():
    assert loads_strict(b'{"a": [1, 2.5, -3e2]}') == {"a": [1, 2.5, -300.0]}
    for text, message in (("[NaN]", "NaN is not a JSON number"),
                          ('{"a": -Infinity}', "-Infinity is not a JSON number"),
                          ("[1e400]", "number 1e400 is out of range"),
                          ("[" + "9" * 5000 + "]", "integer of 5000 digits"),
                          ("[" * 100_000 + "]" * 100_000, "nested too deeply")):
        with pytest.raises(json.JSONDecodeError, match=message):
            loads_strict(text)


def test_body_limit_is_413_before_parsing():
    app = create_app(settings(max_body_bytes=2048), bundle=make_bundle(), store=MemoryStore())
    small = json.dumps({"session_id": "s" * 100, "product_id": 10})
    big = json.dumps({"session_id": "s", "product_id": 10, "pad": "x" * 2100})
    with TestClient(app) as client:
        assert client.post("/v1/events", content=small, headers=JSON).status_code == 200
        r = client.post("/v1/events", content=big, headers=JSON)  # Content-Length says so
        assert r.status_code == 413 and len(r.content) < 100

        def chunks():  # no Content-Length: counted while it arrives
            yield big[:1000].encode()
            yield big[1000:].encode()

        r = client.post("/v1/events", content=chunks(), headers=JSON)
        assert r.status_code == 413 and len(r.content) < 100
    with pytest.raises(ValueError, match="max_body_bytes"):
        settings(max_body_bytes=10)


def test_booleans_are_not_integers(plain):
    r = plain.post("/v1/events", json={"session_id": "s", "product_id": 10, "k": True})
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["body", "k"], "type": "value_error",
                                   "msg": "Value error, must be an integer, got a boolean"}]
    assert plain.post("/v1/events", json={"session_id": "s", "product_id": True}
                      ).status_code == 422
    assert plain.get("/v1/sessions/s/recommendations?k=true").status_code == 422


def test_errors_never_echo_the_input(plain):
    r = plain.post("/v1/events", json={"session_id": "s", "product_id": 10, "k": "x" * 5000})
    assert r.status_code == 422 and "input" not in r.json()["detail"][0]
    assert len(r.content) < 500


# -- model health --------------------------------------------------------------------------


class NaNRNN(TinyRNN):
    """TinyRNN whose output degrades live: NaN scores once ``broken`` is set."""

    name = "nan-rnn"
    broken = False

    def scores_from_state(self, state):
        scores = super().scores_from_state(state)
        return scores * float("nan") if self.broken else scores


def test_a_model_that_degrades_live_is_answered_by_the_fallback_and_not_ready():
    model = NaNRNN()
    store = MemoryStore()
    app = create_app(settings(), bundle=make_bundle(model), store=store)
    with TestClient(app) as client:
        ok = client.post("/v1/events", json={"session_id": "s", "product_id": 10})
        assert ok.json()["fallback"] is False
        assert client.get("/readyz").status_code == 200
        model.broken = True
        before = store._sessions["s"][1]
        r = client.post("/v1/events", json={"session_id": "s", "product_id": 11, "k": 2})
        # the fallback: co-occurrence row of item 1 (10 x3, 12 x2), 10 is seen: 12, then 13
        assert r.json() == {"Predictions": [12, 13], "model": "fallback:cooc", "fallback": True,
                            "reason": "model_unhealthy", "state_reset": False}
        assert store._sessions["s"][1] is before  # the NaN state was not written
        r = client.get("/v1/sessions/s/recommendations")
        assert r.json()["fallback"] is True and r.json()["reason"] == "model_unhealthy"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "non-finite" in ready.json()["model"]["degraded"]


def test_answer_problem():
    fine = np.zeros(2, dtype=np.float32)
    assert answer_problem(fine, 3, 3, 4) is None
    assert answer_problem(fine, 2, 3, 2) is None  # only two items may be shown
    assert answer_problem(fine, 0, 3, 4) == "ranked 0 of 3 items (non-finite scores)"
    assert "NaN" in answer_problem(np.array([0.0, np.nan]), 3, 3, 4)
    # the two most popular (3, 1) and the first two (0, 1)
    assert smoke_items(np.array([0.1, 0.5, 0.2, 0.9]), 4).tolist() == [0, 1, 3]
    assert smoke_items(np.arange(20.0), 4).tolist() == [0, 1, 18, 19]


def copy_run(runs_root, tmp_path, name: str = "bad"):
    """A copy of the gru4rec run in the quickstart layout (its vocabulary is found)."""
    (tmp_path / "data").mkdir(exist_ok=True)
    for f in ("items.parquet", "users.parquet"):
        shutil.copy(runs_root / "data" / f, tmp_path / "data" / f)
    run = tmp_path / "runs" / name
    shutil.copytree(runs_root / "runs" / "gru4rec", run)
    return run


def poison_weights(run) -> str:
    path = run / "model" / WEIGHTS_FILE
    state = torch.load(path, weights_only=True)
    name = sorted(k for k, v in state.items() if k != "popularity_" and v.is_floating_point())[0]
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, path)
    return name


def test_a_nan_weight_model_never_starts(runs_root, tmp_path, capsys):
    run = copy_run(runs_root, tmp_path)
    name = poison_weights(run)
    with pytest.raises(ModelUnhealthy, match=f"NaN or infinite values \\({name}"):
        load_bundle(run)
    assert main(["serve", "--model", str(run)]) == 2
    assert "weights hold NaN" in capsys.readouterr().err
    with pytest.raises(ModelUnhealthy), TestClient(create_app(settings(model=str(run)))):
        pass


def break_truncated(run):
    path = run / "model" / WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:100])


def break_empty(run):
    (run / "model" / WEIGHTS_FILE).write_bytes(b"")


def break_pickled(run):
    (run / "model" / WEIGHTS_FILE).write_bytes(pickle.dumps(Namespace(a=1)))


def break_extra_param(run):
    path = run / "model" / CONFIG_FILE
    config = json.loads(path.read_text())
    config["params"]["surprise"] = 1
    path.write_text(json.dumps(config))


def break_nan(run):
    poison_weights(run)


@pytest.mark.parametrize(("breaker", "cause"), [
    (break_truncated, "cannot load the model"), (break_empty, "cannot load the model"),
    (break_pickled, "cannot load the model"), (break_extra_param, "surprise"),
    (break_nan, "weights hold NaN"), (None, "vocab")])
def test_every_broken_reload_is_400_naming_the_cause(runs_root, tmp_path, breaker, cause):
    run = copy_run(runs_root, tmp_path)
    body = {"model": str(run)}
    if breaker is None:  # a vocabulary path that is not a vocabulary
        body["vocab"] = str(run / "model" / CONFIG_FILE)
    else:
        breaker(run)
    app = create_app(settings(model=str(runs_root / "runs" / "gru4rec"), admin_token="secret"))
    with TestClient(app) as client:
        before = client.get("/readyz").json()["model"]["tag"]
        r = client.post("/admin/reload", headers=AUTH, json=body)
        assert r.status_code == 400, r.text
        assert "still serving the previous model" in r.json()["detail"]
        assert cause in r.json()["detail"]
        assert client.get("/readyz").json()["model"]["tag"] == before
        good = client.post("/v1/events", json={"session_id": "s", "product_id": 100})
        assert good.status_code == 200 and good.json()["fallback"] is False


def test_paths_only_behind_the_admin_token(runs_root, tmp_path):
    run = runs_root / "runs" / "gru4rec"
    app = create_app(settings(model=str(run), admin_token="secret"))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and str(runs_root) not in ready.text
        assert "model_dir" not in ready.json()["model"]
        assert client.get("/admin/model").status_code == 401
        info = client.get("/admin/model", headers=AUTH).json()
        assert info["model_dir"] == str(run / "model")
        assert info["vocab"].endswith("items.parquet")
    with experiment_client(tmp_path, runs_root) as (client, _, _):
        assert str(runs_root) not in client.get("/v1/experiment").text
        assert str(runs_root) not in client.get("/readyz").text


def test_the_spec_states_the_rules(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root) as (client, _, _):
        spec = client.get("/openapi.json").json()
    params = spec["paths"]["/v1/sessions/{session_id}/recommendations"]["get"]["parameters"]
    for p in params:
        if p["name"] in ("user_id", "device_id", "session_id"):
            schema = p["schema"]["anyOf"][0] if "anyOf" in p["schema"] else p["schema"]
            assert schema["pattern"] == "^[^\\u0000]*$", p
    prices = spec["components"]["schemas"]["Purchase"]["properties"]["prices"]
    assert prices["x-same-length-as"] == "product_ids"
    assert "exactly as many prices as product_ids" in prices["description"]
    k = spec["components"]["schemas"]["Event"]["properties"]["k"]["anyOf"][0]
    assert (k["type"], k["minimum"], k["maximum"]) == ("integer", 1, 100)


def test_nan_embeddings_do_not_pass_the_smoke_test():
    from sessionrec.serving.health import check_model
    from sessionrec.serving.step import ModelStep

    class Broken(TinyRNN):
        def advance(self, state, items):
            return super().advance(state, items) * E[0, 1] / E[0, 1]  # 0/0: NaN

    with pytest.raises(ModelUnhealthy, match="session states turn NaN"):
        check_model(ModelStep(Broken()), np.ones(4), "test")
    check_model(ModelStep(TinyRNN()), np.ones(4), "test")  # the healthy one passes
    with pytest.raises(ModelUnhealthy, match="all 4 items are blocked"):
        check_model(ModelStep(TinyRNN(), np.arange(4)), np.ones(4), "test")
