"""The external variant: an outside recommender over HTTP, against a local fake service that
answers well, answers garbage, answers slowly, fails or is down; the circuit breaker; config."""

from __future__ import annotations

import time

import pytest

from sessionrec.errors import ConfigError
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.external import ExternalSpec
from sessionrec.serving.app import create_app
from sessionrec.serving.external import CircuitBreaker, ExternalFailed, parse_ids
from sessionrec.serving.store import MemoryStore

from .fake_recommender import FakeRecommender
from .helpers import TestClient, settings
from .test_experiment_api import users_of, write_experiment


def external_table(url: str, **extra) -> str:
    lines = [f'url = "{url}"', 'auth_header = "X-Api-Key"', 'auth_env = "TEST_OUTSIDE_KEY"',
             "timeout_s = 0.3", "breaker_failures = 3", "breaker_reset_s = 60",
             'response = "data.items"', 'response_item = "sku"',
             'request = {session_id = "sessionId", product_ids = "itemIds", k = "count"}']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines)


def write_external_experiment(folder, runs_root, url: str, **extra):
    """Control ("often bought together") and an outside service share the traffic."""
    path = folder / "exp.toml"
    path.write_text(f"""[experiment]
name = "t"
salt = "pepper"
fallback = "{(runs_root / 'runs' / 'cooc').as_posix()}"
[variants.control]
model = "often-bought-together"
weight = 0.5
[variants.outside]
model = "external"
weight = 0.5
{external_table(url, **extra)}
""")
    return path


@pytest.fixture
def fake():
    service = FakeRecommender()
    service.answer = {"data": {"items": [{"sku": 105}, {"sku": "x-1"}, {"sku": 105}]}}
    yield service
    service.stop()


@pytest.fixture
def outside(tmp_path, runs_root, fake, monkeypatch):
    monkeypatch.setenv("TEST_OUTSIDE_KEY", "s3cret")
    path = write_external_experiment(tmp_path, runs_root, fake.url)
    url = f"sqlite:///{(tmp_path / 'events.db').as_posix()}"
    app = create_app(settings(experiment=str(path), event_log=url), store=MemoryStore())
    config = load_experiment(path)
    with TestClient(app) as client:
        yield client, config, users_of(config, "outside", 2), users_of(config, "control")[0]


def click(client, user, product=100, session=None, **kw):
    r = client.post("/v1/events", json={"session_id": session or f"s-{user}", "user_id": user,
                                        "product_id": product, **kw})
    assert r.status_code == 200
    return r.json()


def test_the_outside_service_answers_with_the_mapped_request(outside, fake):
    client, _, (user, _), _ = outside
    click(client, user, 101)
    got = click(client, user, 100, k=5)
    assert got["variant"] == "outside" and got["fallback"] is False
    assert got["Predictions"] == [105, "x-1"] and got["model"] == "external:outside"
    headers, body = fake.requests[-1]
    assert headers["X-Api-Key"] == "s3cret"
    assert body == {"sessionId": f"s-{user}", "user_id": user, "itemIds": [101, 100],
                    "count": 5}


@pytest.mark.parametrize("mode, reason", [("garbage", "external_not_json"),
                                          ("wrong_shape", "external_bad_response"),
                                          ("error", "external_http_500"),
                                          ("slow", "external_timeout")])
def test_a_failing_service_falls_back_to_control(outside, fake, mode, reason):
    client, _, (user, _), control_user = outside
    fake.mode = mode
    t0 = time.perf_counter()
    got = click(client, user, 100)
    assert time.perf_counter() - t0 < fake.delay_s  # the timeout (0.3 s) cut it short
    assert got["variant"] == "outside" and got["fallback"] is True and got["reason"] == reason
    control = click(client, control_user, 100)
    assert got["Predictions"] == control["Predictions"]  # what control shows the same click


def test_a_down_service_opens_the_circuit(outside, fake):
    client, _, (user, other), _ = outside
    fake.stop()
    reasons = [click(client, u, 100 + i)["reason"] for i, u in enumerate([user, other, user])]
    assert reasons == ["external_unreachable"] * 3
    calls = len(fake.requests)
    got = click(client, other, 104)  # the breaker opened after 3 failures: no call goes out
    assert got["reason"] == "external_circuit_open" and got["fallback"] is True
    assert len(fake.requests) == calls
    assert got["Predictions"]  # control's ranking, never an error


def test_the_breaker_half_opens_after_the_reset_time():
    now = [0.0]
    b = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    b.failed()
    assert b.state == "closed" and b.allow()
    b.failed()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half_open" and b.allow() and not b.allow()  # one trial at a time
    b.failed()  # the trial failed: open again, for another 10 s
    assert b.state == "open"
    now[0] = 20.0
    assert b.allow()
    b.succeeded()
    assert b.state == "closed" and b.in_a_row == 0


def test_parse_ids():
    spec = ExternalSpec(url="http://x", response="r", response_item="")
    assert parse_ids({"r": [3, "a", 3, "b"]}, spec, 3) == [3, "a", "b"]
    for body, match in (({"r": [True]}, "not a product id"), ({"r": []}, "recommended nothing"),
                        ({"s": [1]}, "no field 'r'"), ([1], "no field 'r'"),
                        ({"r": ["x" * 200]}, "not a product id")):
        with pytest.raises(ExternalFailed, match=match):
            parse_ids(body, spec, 5)


@pytest.mark.parametrize("extra, key", [
    ({"timeout_s": 0}, "timeout_s"), ({"breaker_failures": 0}, "breaker_failures"),
    ({"auth_env": '""'}, "auth_env"), ({"request": '{cart = "x"}'}, "request.cart")])
def test_bad_external_configs_name_the_key(tmp_path, runs_root, extra, key):
    path = write_external_experiment(tmp_path, runs_root, "http://127.0.0.1:9/r")
    text = path.read_text()
    for k, v in extra.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{k} ="))
        text += f"\n{k} = {v}\n"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"variants.outside.{key}"):
        load_experiment(path)


def test_external_keys_on_a_model_variant_and_an_external_control_are_refused(tmp_path,
                                                                              runs_root):
    path = write_experiment(tmp_path, runs_root)
    path.write_text(path.read_text() + 'url = "http://x"\n')
    with pytest.raises(ConfigError, match=r"variants\.gru\.url: only an external variant"):
        load_experiment(path)
    path = write_external_experiment(tmp_path, runs_root, "http://127.0.0.1:9/r")
    path.write_text(path.read_text().replace("[experiment]", '[experiment]\ncontrol = "outside"'))
    with pytest.raises(ConfigError, match="is an external variant"):
        load_experiment(path)


def test_the_stand_in_outside_service(runs_root, monkeypatch):
    from sessionrec.experiments.outside import outside_app

    monkeypatch.setenv("OUTSIDE_TEST_KEY", "k1")
    app = outside_app(runs_root / "runs" / "cooc", "OUTSIDE_TEST_KEY")
    with TestClient(app) as client:
        body = {"session": "s", "history": [100, "unknown"], "n": 3}
        assert client.post("/recommend", json=body).status_code == 401
        got = client.post("/recommend", json=body, headers={"X-Api-Key": "k1"}).json()
        ids = [x["id"] for x in got["items"]]
        assert len(ids) == 3 and 100 not in ids  # the session's own product is not repeated
        # the cooc run's neighbours of 100 (item 0) come first: the walks go 0 -> 1 -> 2
        assert ids[0] in (101, 111)
