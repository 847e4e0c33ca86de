"""The console's pages and JSON endpoints through the app (no browser): lanes side by side,
catalogue search, escaping, clear messages, model cards, the admin token."""

from __future__ import annotations

import json

import pytest

from sessionrec.console.catalogue import Catalogue
from sessionrec.console.lanes import parse_compare
from sessionrec.errors import ConfigError
from sessionrec.serving.app import create_app
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.store import MemoryStore
from tests.serving.helpers import TestClient, settings

from .conftest import MARKUP


def client_for(root, **kw) -> TestClient:
    runs = root / "runs"
    compare = (f"hgru={runs / 'hgru4rec'},often-bought-together=often-bought-together,"
               f"broken={runs / 'broken'}")
    s = settings(model=str(runs / "gru4rec"), ui_compare=compare, **kw)
    return TestClient(create_app(s, bundle=load_bundle(runs / "gru4rec"), store=MemoryStore()))


@pytest.fixture(scope="module")
def client(console_root):
    with client_for(console_root) as c:
        yield c


def test_parse_compare():
    assert parse_compare(" a=runs/x , runs/y/ ") == [("a", "runs/x"), ("y", "runs/y/")]
    assert parse_compare("") == []
    with pytest.raises(ConfigError, match="given twice"):
        parse_compare("a=x,a=y")


def test_catalogue_search_orders_exact_id_then_most_clicked(console_root):
    cat = Catalogue.read(console_root / "data" / "items.parquet")
    assert cat.fields == ("name", "category", "brand", "price")
    assert [p["id"] for p in cat.search("105")] == ["105"]
    # "audio": odd items 101, 103, ...; train_events fall with the index
    assert [p["id"] for p in cat.search("AUDIO", limit=3)] == ["101", "103", "105"]
    assert [p["id"] for p in cat.search("lokaka")][:2] == ["106", "107"]
    assert cat.search("  ") == [] and cat.search("nothing-like-this") == []


def test_click_answers_in_every_lane_with_flags(client):
    r = client.post("/ui/api/sessions/ui-abc/click", json={"product_id": 100, "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["product"]["name"] == "Product A"
    lanes = {a["name"]: a for a in body["lanes"]}
    assert list(lanes) == ["gru4rec", "hgru", "often-bought-together", "broken"]
    for name in ("gru4rec", "hgru", "often-bought-together"):
        lane = lanes[name]
        assert lane["error"] is None and lane["fallback"] is False
        assert len(lane["items"]) == 3 and all(i["score"] is not None for i in lane["items"])
        assert "100" not in [i["id"] for i in lane["items"]]  # the session's own product
        scores = [i["score"] for i in lane["items"]]
        assert scores == sorted(scores, reverse=True)
        assert lane["cold_start"] == []
    assert "no saved model" in lanes["broken"]["error"]
    # cooc: the walks i, i+1, ... (mod 12) put 100 most often beside its neighbours 101, 111
    assert sorted(i["id"] for i in lanes["often-bought-together"]["items"][:2]) == ["101", "111"]


def test_unknown_user_is_a_cold_start_for_the_user_model_only(client):
    r = client.post("/ui/api/sessions/ui-user1/click",
                    json={"product_id": 101, "user_id": "stranger", "k": 2})
    lanes = {a["name"]: a for a in r.json()["lanes"]}
    assert lanes["hgru"]["cold_start"] == ["user"]
    assert lanes["gru4rec"]["cold_start"] == []
    r = client.post("/ui/api/sessions/ui-user2/click",
                    json={"product_id": 101, "user_id": 1003, "k": 2})  # a training user
    assert {a["name"]: a for a in r.json()["lanes"]}["hgru"]["cold_start"] == []


def test_unknown_product_and_bad_session_are_clear_errors(client):
    r = client.post("/ui/api/sessions/ui-x/click", json={"product_id": "nope"})
    assert r.status_code == 404 and "Unknown product 'nope'" in r.json()["detail"]
    r = client.post("/ui/api/sessions/shop-session/click", json={"product_id": 100})
    assert r.status_code == 422  # the console only touches its own ui-... sessions


def test_search_endpoint_messages(client):
    assert client.get("/ui/api/products", params={"q": " "}).status_code == 422
    body = client.get("/ui/api/products", params={"q": "zzz"}).json()
    assert body["products"] == [] and body["message"] == "No product matches 'zzz'."
    body = client.get("/ui/api/products", params={"q": "<b>"}).json()
    assert [p["name"] for p in body["products"]] == [MARKUP]


def test_reset_ends_the_session_everywhere(client):
    client.post("/ui/api/sessions/ui-r1/click", json={"product_id": 100})
    body = client.post("/ui/api/sessions/ui-r1/reset").json()
    assert body["lanes_ended"] == 3 and body["session_id"].startswith("ui-")
    assert client.post("/ui/api/sessions/ui-r1/reset").json()["lanes_ended"] == 0


def test_pages_escape_markup_and_name_failures(client):
    page = client.get("/ui/playground").text
    assert "<b>Bold</b>" not in page and "<img src=x" not in page
    assert "\\u003cb\\u003eBold" in page  # the boot data, JSON-escaped inside <script>
    assert "Failed to load" in page and "broken" in page
    models = client.get("/ui/models").text
    assert "failed to load" in models
    card = client.get("/ui/models/gru4rec")
    assert card.status_code == 200
    assert "recall@20" in card.text and "loss per epoch" in card.text and "1,234" in card.text
    assert client.get("/ui/models/broken").status_code == 503
    assert client.get("/ui/models/<script>").status_code == 404
    assert "&lt;script&gt;" in client.get("/ui/models/<script>").text
    assert client.get("/ui/experiment").status_code == 404
    assert client.get("/ui/models/gru4rec/files/../config.toml").status_code == 404


def test_admin_reload_needs_the_token(console_root):
    with client_for(console_root, admin_token="s3cret") as c:
        assert c.post("/ui/api/reload").status_code == 401
        r = c.post("/ui/api/reload", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and r.json()["reloaded"].startswith("gru4rec@")
        r = c.post("/ui/login", data={"token": "wrong", "next": "/ui/models"})
        assert r.status_code == 401 and "Wrong token" in r.text
        r = c.post("/ui/login", data={"token": "s3cret", "next": "/ui/models"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/models"
        assert c.post("/ui/api/reload").status_code == 200  # the cookie now
    with client_for(console_root) as c:
        assert c.post("/ui/api/reload").status_code == 403  # no token configured


def test_private_console_and_switching_it_off(console_root):
    with client_for(console_root, admin_token="t", ui_private=True) as c:
        r = c.get("/ui/playground", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"].startswith("/ui/login")
        assert c.get("/ui/api/products", params={"q": "1"}).status_code == 401
        r = c.get("/ui/api/products", params={"q": "1"}, headers={"Authorization": "Bearer t"})
        assert r.status_code == 200
    with client_for(console_root, ui=False) as c:
        assert c.get("/ui/playground").status_code == 404
        assert c.get("/healthz").status_code == 200
    with pytest.raises(ConfigError, match="ui_private"):
        settings(ui_private=True)


def _dashboard(c, want: str) -> dict:
    for _ in range(600):
        body = c.get("/ui/api/experiment").json()
        if body["status"] == want:
            return body
    raise AssertionError(f"dashboard never became {want!r}: {body}")


def test_dashboard_empty_then_the_reports_numbers(console_root, tmp_path):
    from sessionrec.experiments.eventlog import open_event_log
    from sessionrec.experiments.report import analyse
    from sessionrec.experiments.synthetic_log import write_log

    from .test_browser import experiment_app

    app, config, frame = experiment_app(tmp_path, console_root / "runs", events=False)
    with TestClient(app) as c:
        body = _dashboard(c, "empty")
        assert "No events logged yet for experiment 'console-test'" in body["message"]
        assert c.get("/ui/experiment").status_code == 200
        with open_event_log(f"sqlite:///{(tmp_path / 'events.db').as_posix()}") as log:
            write_log(log, frame)
            expected = json.loads(json.dumps(analyse(log.read_frame(config.name), config,
                                                     n_boot=0)))  # as sent: JSON
        c.app.state.console.dashboard().refresh_s = 0.0
        body = _dashboard(c, "ready")
    # the same numbers (polars may sum in another order: equal to the last bits only)
    assert [c["verdict"] for c in body["comparisons"]] == [
        c["verdict"] for c in expected["comparisons"]]
    for got, want in zip(body["comparisons"], expected["comparisons"], strict=True):
        for key in ("diff", "low", "high", "p_value", "p_holm", "p_always_valid"):
            assert got[key] == pytest.approx(want[key], rel=1e-9), key
    assert body["srm"] == expected["srm"]
    assert body["variants"] == expected["variants"]
    # the cumulative series ends at the whole experiment's totals
    for v in expected["variants"]:
        last = [r for r in body["series"] if r["variant"] == v["variant"]][-1]
        assert last["cumulative_impressions"] == v["impressions"]
        assert last["cumulative_ctr"]["value"] == pytest.approx(v["ctr"], rel=1e-12)
        assert last["cumulative_ctr"]["low"] < v["ctr"] < last["cumulative_ctr"]["high"]
