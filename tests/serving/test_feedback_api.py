"""Feedback endpoints: exactly-once logging by idempotency key, orphans (unknown and expired
recommendation ids), purchases without clicks, out-of-order times, malformed bodies, and an
event log outage (503 for feedback, recommendations still served)."""

from __future__ import annotations

import json

import pytest

from sessionrec.experiments.assignment import assign
from sessionrec.experiments.eventlog import EventLogError

from .test_experiment_api import T0, experiment_client, frame, router, users_of

DAY = 86400.0


@pytest.fixture
def exp(tmp_path, runs_root):
    with experiment_client(tmp_path, runs_root) as got:
        yield got


def recommend(client, config, variant: str = "gru", ts: float = T0) -> dict:
    user = users_of(config, variant)[0]
    r = client.post("/v1/events", json={"session_id": "s", "user_id": user, "product_id": 100,
                                        "k": 3, "timestamp": ts})
    return r.json()


def sample(client, name: str, **labels) -> float:
    return router(client).metrics.registry.get_sample_value(name, labels) or 0.0


def test_impressions_and_clicks_copy_their_recommendation_and_count_once(exp):
    client, config, url = exp
    rec = recommend(client, config)
    rid, shown = rec["recommendation_id"], rec["Predictions"]
    body = {"idempotency_key": "imp-1", "recommendation_id": rid, "product_ids": shown[:2],
            "timestamp": T0 + 5}
    for duplicate in (False, True):  # the shop retries: the same key twice
        r = client.post("/v1/feedback/impressions", json=body)
        assert r.status_code == 202
        assert r.json() == {"accepted": True, "duplicate": duplicate, "orphan": False}
    click = {"idempotency_key": "clk-1", "recommendation_id": rid, "product_id": shown[1],
             "timestamp": "2026-01-01T00:00:09Z"}
    assert client.post("/v1/feedback/clicks", json=click).json()["duplicate"] is False
    assert client.post("/v1/feedback/clicks", json=click).json()["duplicate"] is True
    events = frame(url)
    assert events.filter(kind="impression").height == 1
    assert events.filter(kind="click").height == 1
    user = users_of(config, "gru")[0]
    for kind, products in (("impression", shown[:2]), ("click", [shown[1]])):
        row = events.filter(kind=kind).row(0, named=True)
        assert (row["variant"], row["unit_id"], row["user_id"], row["session_id"],
                row["recommendation_id"], row["orphan"]) == (
            "gru", f"user:{user}", user, "s", rid, False)
        assert row["product_ids"] == [str(p) for p in products]
    assert events.filter(kind="click")["ts"].dt.epoch("s").to_list() == [T0 + 9]
    assert sample(client, "sessionrec_feedback_total", kind="click", result="new") == 1
    assert sample(client, "sessionrec_feedback_total", kind="click", result="duplicate") == 1


def test_unknown_and_expired_recommendation_ids_are_orphans(exp):
    client, config, url = exp
    rid = recommend(client, config, ts=T0)["recommendation_id"]
    r = client.post("/v1/feedback/clicks", json={"idempotency_key": "c1",
                                                 "recommendation_id": "f" * 32,
                                                 "product_id": 100})
    assert r.status_code == 202 and r.json() == {"accepted": True, "duplicate": False,
                                                 "orphan": True}
    late = {"idempotency_key": "c2", "recommendation_id": rid, "product_id": 101,
            "timestamp": T0 + 30 * DAY + 1}  # recommendation_ttl_days = 30 (the default)
    assert client.post("/v1/feedback/clicks", json=late).json()["orphan"] is True
    in_time = {**late, "idempotency_key": "c3", "timestamp": T0 + 30 * DAY}
    assert client.post("/v1/feedback/clicks", json=in_time).json()["orphan"] is False
    clicks = frame(url).filter(kind="click").sort("idempotency_key")
    assert clicks["orphan"].to_list() == [True, True, False]
    assert clicks["variant"].to_list() == [None, None, "gru"]
    assert sample(client, "sessionrec_feedback_orphans_total", kind="click", why="unknown") == 1
    assert sample(client, "sessionrec_feedback_orphans_total", kind="click", why="expired") == 1


def test_a_recommendation_only_in_the_log_is_found_by_another_worker(exp):
    client, config, _ = exp
    rid = recommend(client, config)["recommendation_id"]
    router(client)._recent.clear()  # as if another replica had served it
    r = client.post("/v1/feedback/impressions", json={
        "idempotency_key": "i", "recommendation_id": rid, "product_ids": [100],
        "timestamp": T0 + 1})
    assert r.json()["orphan"] is False


def test_out_of_order_times_are_taken_as_given(exp):
    client, config, url = exp
    rid = recommend(client, config, ts=T0 + 100)["recommendation_id"]
    r = client.post("/v1/feedback/clicks", json={"idempotency_key": "early",
                                                 "recommendation_id": rid, "product_id": 100,
                                                 "timestamp": T0})  # before its recommendation
    assert r.status_code == 202 and r.json()["orphan"] is False
    assert frame(url).filter(kind="click")["ts"].dt.epoch("s").to_list() == [T0]


def test_purchases_without_any_click_get_the_buyers_variant(exp):
    client, config, url = exp
    user = users_of(config, "control")[0]
    body = {"idempotency_key": "order-1", "order_id": 1, "user_id": user,
            "product_ids": [100, "105"], "prices": [19.9, 5], "timestamp": T0}
    for duplicate in (False, True):
        r = client.post("/v1/feedback/purchases", json=body)
        assert r.status_code == 202
        assert r.json() == {"accepted": True, "duplicate": duplicate, "orphan": False}
    # An anonymous buyer on a device; another buyer known only by session, without prices.
    client.post("/v1/feedback/purchases", json={"idempotency_key": "order-2", "order_id": "2",
                                                "device_id": "d9", "product_ids": [101]})
    client.post("/v1/feedback/purchases", json={"idempotency_key": "order-3", "order_id": "3",
                                                "session_id": 77, "product_ids": [102]})
    rows = frame(url).filter(kind="purchase").sort("order_id").to_dicts()
    assert [(r["order_id"], r["unit_id"], r["variant"], r["user_id"], r["session_id"])
            for r in rows] == [
        ("1", f"user:{user}", "control", user, None),
        ("2", "device:d9", assign(config, "device:d9"), None, None),
        ("3", "session:77", assign(config, "session:77"), None, "77")]
    assert rows[0]["product_ids"] == ["100", "105"] and rows[0]["prices"] == [19.9, 5.0]
    assert rows[1]["prices"] is None and not any(r["orphan"] for r in rows)


def test_a_purchase_on_a_linked_device_is_credited_to_its_user(exp):
    client, config, url = exp
    user = users_of(config, "gru")[0]
    client.post("/v1/events", json={"session_id": "s", "user_id": user, "device_id": "d",
                                    "product_id": 100})
    client.post("/v1/feedback/purchases", json={"idempotency_key": "o", "order_id": "o",
                                                "device_id": "d", "product_ids": [101]})
    row = frame(url).filter(kind="purchase").row(0, named=True)
    assert (row["unit_id"], row["variant"]) == (f"user:{user}", "gru")


GOOD = {
    "impressions": {"idempotency_key": "k", "recommendation_id": "r", "product_ids": [1]},
    "clicks": {"idempotency_key": "k", "recommendation_id": "r", "product_id": 1},
    "purchases": {"idempotency_key": "k", "order_id": 1, "user_id": "u", "product_ids": [1]},
}
BAD = [
    ("impressions", {"idempotency_key": None}, ["body", "idempotency_key"]),
    ("impressions", {"idempotency_key": ""}, ["body", "idempotency_key"]),
    ("impressions", {"idempotency_key": "k" * 129}, ["body", "idempotency_key"]),
    ("impressions", {"idempotency_key": 5}, ["body", "idempotency_key"]),
    ("impressions", {"recommendation_id": ""}, ["body", "recommendation_id"]),
    ("impressions", {"product_ids": []}, ["body", "product_ids"]),
    ("impressions", {"product_ids": 1}, ["body", "product_ids"]),
    ("impressions", {"product_ids": [1, True]}, ["body", "product_ids", 1]),
    ("impressions", {"timestamp": "yesterday"}, ["body", "timestamp"]),
    ("impressions", {"extra": 1}, ["body", "extra"]),
    ("clicks", {"product_id": None}, ["body", "product_id"]),
    ("clicks", {"product_id": [1]}, ["body", "product_id"]),
    ("clicks", {"recommendation_id": None}, ["body", "recommendation_id"]),
    ("clicks", {"timestamp": -1}, ["body", "timestamp"]),
    ("purchases", {"order_id": None}, ["body", "order_id"]),
    ("purchases", {"user_id": None}, ["body", "user_id"]),  # no buyer at all
    ("purchases", {"prices": [1.0, 2.0]}, ["body", "prices"]),  # one product, two prices
    ("purchases", {"prices": [0]}, ["body", "prices", 0]),
    ("purchases", {"prices": [-3.5]}, ["body", "prices", 0]),
    ("purchases", {"prices": ["free"]}, ["body", "prices", 0]),
    ("purchases", {"product_ids": ["x" * 129]}, ["body", "product_ids", 0]),
    ("purchases", {"device_id": {"id": 1}}, ["body", "device_id"]),
    ("purchases", {"product_ids": ["a\x00"]}, ["body", "product_ids", 0]),  # no log stores NUL
    ("clicks", {"idempotency_key": "\ud800"}, ["body", "idempotency_key"]),
]


@pytest.mark.parametrize(("endpoint", "change", "loc"), BAD)
def test_malformed_bodies_are_422_naming_the_field_and_log_nothing(exp, endpoint, change, loc):
    client, _, url = exp
    r = client.post(f"/v1/feedback/{endpoint}", content=json.dumps({**GOOD[endpoint], **change}),
                    headers={"content-type": "application/json"})  # ASCII: "\ud800" escaped
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["detail"]]
    assert frame(url).height == 0


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"null", b"[]"])
def test_malformed_json_is_422(exp, raw):
    client, _, _ = exp
    r = client.post("/v1/feedback/clicks", content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"


class DownLog:
    """An event log whose database is gone."""

    async def append_each(self, events):
        raise EventLogError("event log t.db: append failed (disk I/O error)")

    async def recommendation(self, experiment, recommendation_id):
        raise EventLogError("event log t.db: read failed (disk I/O error)")

    async def aclose(self):
        return None


def test_an_event_log_outage_is_503_for_feedback_but_recommendations_are_served(exp):
    client, config, url = exp
    rid = recommend(client, config)["recommendation_id"]
    router(client).events = DownLog()
    router(client)._recent.clear()
    r = client.post("/v1/feedback/clicks", json={"idempotency_key": "c", "product_id": 100,
                                                 "recommendation_id": rid})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "retry with the same idempotency_key" in r.json()["detail"]
    assert "the outcome is unknown" in r.json()["detail"]  # it may have been written late
    assert "nothing was recorded" not in r.json()["detail"]
    r = client.post("/v1/feedback/purchases", json=GOOD["purchases"])
    assert r.status_code == 503
    r = client.post("/v1/events", json={"session_id": "s2", "user_id": "x", "product_id": 100})
    assert r.status_code == 200 and len(r.json()["Predictions"]) > 0
    assert sample(client, "sessionrec_event_log_errors_total", op="lookup") == 1
    assert sample(client, "sessionrec_event_log_errors_total", op="feedback") == 1
    assert sample(client, "sessionrec_event_log_errors_total", op="recommendation") == 1
    assert frame(url).filter(kind="click").height == 0  # nothing half-written
