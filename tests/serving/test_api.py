"""The REST API: every endpoint, every kind of bad input, admin reload under requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore, StoreUnavailable

from .helpers import PRODUCTS, TestClient, make_bundle, settings

TAG = "tiny-rnn@" + b"tinykey1".hex()


class SwitchableStore(MemoryStore):
    down = False

    async def get_session(self, session_id):
        if self.down:
            raise StoreUnavailable("switched off by the test")
        return await super().get_session(session_id)

    async def ping(self):
        if self.down:
            raise StoreUnavailable("switched off by the test")


@pytest.fixture
def store() -> SwitchableStore:
    return SwitchableStore(session_ttl_s=1800, user_ttl_s=86400)


@pytest.fixture
def client(store):
    app = create_app(settings(admin_token="secret"), bundle=make_bundle(), store=store)
    with TestClient(app) as c:
        yield c


def test_post_event(client, store):
    r = client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    assert r.status_code == 200
    assert r.json() == {"Predictions": [12, 11, 13], "model": TAG, "fallback": False,
                        "reason": None, "state_reset": False}
    r = client.post("/v1/events", json={"session_id": "s", "product_id": "11", "k": 1,
                                        "user_id": 7, "timestamp": "2024-03-01T08:00:00Z"})
    assert r.json()["Predictions"] == [12]
    record = store._sessions["s"][1]
    assert record.n_events == 2 and record.user_id == "7"
    assert record.last_event_at == 1709280000.0
    r = client.post("/v1/events", json={"session_id": 5, "product_id": 10, "exclude_seen": False,
                                        "timestamp": 1709280000})
    assert r.json()["Predictions"] == [12, 10, 11, 13] and "5" in store._sessions


def test_unknown_product_and_store_outage_answer_from_the_fallback(client, store):
    r = client.post("/v1/events", json={"session_id": "s", "product_id": "new-product", "k": 2})
    assert r.status_code == 200
    assert r.json() == {"Predictions": [11, 13], "model": "fallback:cooc", "fallback": True,
                        "reason": "unknown_product", "state_reset": False}
    store.down = True
    r = client.post("/v1/events", json={"session_id": "s", "product_id": 10, "k": 2})
    assert r.status_code == 200 and r.json()["reason"] == "store_unavailable"
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["store"].startswith("unavailable")
    r = client.get("/v1/sessions/s/recommendations")
    assert r.status_code == 200 and r.json()["fallback"]
    store.down = False  # store_retry_s = 0 in the test settings: used again at once
    r = client.post("/v1/events", json={"session_id": "s", "product_id": 10, "k": 2})
    assert r.json()["fallback"] is False
    metrics = client.get("/metrics").text
    assert 'sessionrec_fallbacks_total{reason="store_unavailable"} 2.0' in metrics
    assert 'sessionrec_store_errors_total{op="event"} 1.0' in metrics


BAD_EVENTS = [
    ({"session_id": "s"}, ["body", "product_id"]),
    ({"product_id": 10}, ["body", "session_id"]),
    ({"session_id": "s", "product_id": "x" * 129}, ["body", "product_id"]),
    ({"session_id": "s" * 129, "product_id": 10}, ["body", "session_id"]),
    ({"session_id": "", "product_id": 10}, ["body", "session_id"]),
    ({"session_id": "s", "product_id": 1.5}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": True}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": None}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": 2**64}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": [10]}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": 10, "k": 0}, ["body", "k"]),
    ({"session_id": "s", "product_id": 10, "k": -3}, ["body", "k"]),
    ({"session_id": "s", "product_id": 10, "k": 101}, ["body", "k"]),
    ({"session_id": "s", "product_id": 10, "k": 10**30}, ["body", "k"]),
    ({"session_id": "s", "product_id": 10, "k": "many"}, ["body", "k"]),
    ({"session_id": "s", "product_id": 10, "timestamp": "yesterday"}, ["body", "timestamp"]),
    ({"session_id": "s", "product_id": 10, "exclude_seen": "yes"}, ["body", "exclude_seen"]),
    ({"session_id": "s", "product_id": 10, "user_id": {"id": 1}}, ["body", "user_id"]),
    ({"session_id": "s", "productId": 10}, ["body", "product_id"]),
    ({"session_id": "s", "product_id": 10, "extra": 1}, ["body", "extra"]),
    ([{"session_id": "s", "product_id": 10}], ["body"]),
]


@pytest.mark.parametrize(("body", "loc"), BAD_EVENTS)
def test_bad_events_are_422_naming_the_field_and_change_nothing(client, store, body, loc):
    client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    before = store._sessions["s"][0]
    r = client.post("/v1/events", json=body)
    assert r.status_code == 422
    assert loc in [e["loc"] for e in r.json()["detail"]]
    assert list(store._sessions) == ["s"] and store._sessions["s"][0] == before


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"null", b'{"session_id": "s", '])
def test_malformed_json_is_422(client, store, raw):
    r = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"
    assert not store._sessions


def test_session_recommendations(client):
    client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    client.post("/v1/events", json={"session_id": "s", "product_id": 11})
    r = client.get("/v1/sessions/s/recommendations", params={"k": 1})
    assert r.status_code == 200
    assert r.json() == {"Predictions": [12], "model": TAG, "fallback": False, "reason": None,
                        "state_reset": False, "session_id": "s", "events": 2}
    r = client.get("/v1/sessions/s/recommendations", params={"exclude_seen": "false"})
    assert r.json()["Predictions"] == [12, 11, 10, 13]
    r = client.get("/v1/sessions/nope/recommendations")
    assert r.status_code == 404 and "session_id 'nope'" in r.json()["detail"]


@pytest.mark.parametrize(("url", "loc"), [
    ("/v1/sessions/s/recommendations?k=0", ["query", "k"]),
    ("/v1/sessions/s/recommendations?k=101", ["query", "k"]),
    ("/v1/sessions/s/recommendations?k=x", ["query", "k"]),
    ("/v1/sessions/s/recommendations?exclude_seen=maybe", ["query", "exclude_seen"]),
    ("/v1/sessions/" + "s" * 129 + "/recommendations", ["path", "session_id"]),
    ("/v1/products/10/similar?k=-1", ["query", "k"]),
    ("/v1/products/" + "p" * 129 + "/similar", ["path", "product_id"]),
])
def test_bad_query_and_path_parameters_are_422(client, url, loc):
    r = client.get(url)
    assert r.status_code == 422
    assert loc in [e["loc"] for e in r.json()["detail"]]


def test_similar_products(client):
    r = client.get("/v1/products/10/similar", params={"k": 2})
    assert r.status_code == 200
    body = r.json()
    assert (body["Predictions"], body["product_id"], body["fallback"]) == ([12, 11], 10, False)
    assert body["similarity"] == pytest.approx([2**-0.5, 0.0], abs=1e-6)
    r = client.get("/v1/products/99/similar")
    assert r.status_code == 404 and "product_id '99'" in r.json()["detail"]


def test_end_session(client):
    client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    assert client.post("/v1/sessions/s/end").json() == {"session_id": "s", "ended": True}
    assert client.post("/v1/sessions/s/end").json() == {"session_id": "s", "ended": False}
    assert client.get("/v1/sessions/s/recommendations").status_code == 404


def test_operations_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["store"] == "ok" and ready["model"]["tag"] == TAG
    client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    client.post("/v1/events", json={"session_id": "s"})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'sessionrec_requests_total{endpoint="/v1/events",status="200"} 1.0' in text
    assert 'sessionrec_requests_total{endpoint="/v1/events",status="422"} 1.0' in text
    assert 'sessionrec_request_seconds_count{endpoint="/v1/events"} 2.0' in text
    assert "sessionrec_step_batch_size_bucket" in text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/sessions/{session_id}/recommendations",
            "/v1/sessions/{session_id}/end", "/v1/products/{product_id}/similar", "/healthz",
            "/readyz", "/metrics", "/admin/reload"} <= set(paths)


def test_admin_reload_needs_the_token(client):
    assert client.post("/admin/reload").status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    basic = client.post("/admin/reload", headers={"Authorization": "Basic secret"})
    assert basic.status_code == 401
    app = create_app(settings(), bundle=make_bundle(), store=MemoryStore())
    with TestClient(app) as c:
        r = c.post("/admin/reload", headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "SESSIONREC_ADMIN_TOKEN" in r.json()["detail"]


@pytest.fixture
def disk_client(runs_root):
    run_a = runs_root / "runs" / "gru4rec"
    app = create_app(settings(model=str(run_a), admin_token="secret"))
    with TestClient(app) as c:
        yield c


AUTH = {"Authorization": "Bearer secret"}


def test_admin_reload_swaps_the_model(disk_client, runs_root):
    before = disk_client.get("/readyz").json()["model"]["tag"]
    r = disk_client.post("/admin/reload", headers=AUTH,
                         json={"model": str(runs_root / "runs" / "gru4rec-b")})
    assert r.status_code == 200 and r.json()["tag"] != before
    assert disk_client.get("/readyz").json()["model"]["tag"] == r.json()["tag"]
    r = disk_client.post("/admin/reload", headers=AUTH)  # back to the configured model
    assert r.json()["tag"] == before
    bad = disk_client.post("/admin/reload", headers=AUTH, json={"model": "/no/such/run"})
    assert bad.status_code == 400 and "still serving the previous model" in bad.json()["detail"]
    assert disk_client.get("/readyz").json()["model"]["tag"] == before
    assert disk_client.post("/admin/reload", headers=AUTH,
                            json={"modle": "typo"}).status_code == 422


def test_hot_reload_under_requests(disk_client, runs_root):
    stop = threading.Event()
    answers = []

    def shop(worker: int) -> None:
        i = 0
        while not stop.is_set() or i < 20:
            r = disk_client.post("/v1/events", json={
                "session_id": f"w{worker}-{i % 3}", "product_id": PRODUCTS[i % 12], "k": 5})
            answers.append((r.status_code, r.json()))
            i += 1

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(shop, w) for w in range(3)]
        for run_name in ("gru4rec-b", "gru4rec", "gru4rec-b"):
            r = disk_client.post("/admin/reload", headers=AUTH,
                                 json={"model": str(runs_root / "runs" / run_name)})
            assert r.status_code == 200
        stop.set()
        for f in futures:
            f.result()
    assert answers and all(status == 200 for status, _ in answers)
    assert not any(body["fallback"] for _, body in answers)
    assert all(len(body["Predictions"]) == 5 and set(body["Predictions"]) <= set(PRODUCTS)
               for _, body in answers)
    metrics = disk_client.get("/metrics").text
    assert 'sessionrec_reloads_total{result="ok"} 3.0' in metrics


def test_api_docs_are_served_without_internet(client):
    """/docs and /redoc load their assets from this server, never from a CDN."""
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page)
        assert html.status_code == 200
        assert f"/static-offline-docs/{asset}" in html.text
        assert "cdn." not in html.text and "https://" not in html.text.split("<body")[0]
        js = client.get(f"/static-offline-docs/{asset}")
        assert js.status_code == 200 and len(js.content) > 100_000
