"""The archive in the API: views archived before the answer, the batch endpoint answered per
event, an archive outage, feedback of an experiment, and the loop serve -> archive -> export
-> prepare."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from sessionrec.archive.log import SQLiteArchive, open_archive
from sessionrec.cli import main
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, make_bundle, settings
from .test_experiment_api import T0, experiment_client

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"


class BreakableArchive(SQLiteArchive):
    broken = False

    def _insert(self, events, now_us):
        if self.broken:
            raise OSError("disk gone (test)")
        return super()._insert(events, now_us)


@pytest.fixture
def archive():
    log = BreakableArchive(":memory:")
    yield log
    log.close()


@pytest.fixture
def client(archive):
    app = create_app(settings(), bundle=make_bundle(), store=MemoryStore(1800, 86400),
                     archive=archive)
    with TestClient(app) as c:
        yield c


def test_a_view_is_archived_before_its_answer(client, archive):
    r = client.post("/v1/events", json={"session_id": "s", "product_id": 10, "user_id": 7,
                                        "device_id": "d", "timestamp": "2026-03-01T08:00:00Z"},
                    headers={"User-Agent": UA})
    assert r.status_code == 200 and r.headers["Sessionrec-Archived"] == "true"
    assert r.json()["Predictions"] == [12, 11, 13]
    row = archive.read_frame().row(0, named=True)
    assert (row["kind"], row["session_id"], row["user_id"], row["device_id"],
            row["product_ids"], row["placement"], row["user_agent"]) == (
        "view", "s", "7", "d", ["10"], "product_page", UA)
    assert row["ts"] == datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_an_archive_outage_still_answers_but_says_so(client, archive):
    archive.broken = True
    r = client.post("/v1/events", json={"session_id": "s", "product_id": 10})
    assert r.status_code == 200 and r.headers["Sessionrec-Archived"] == "false"
    assert r.json()["Predictions"] == [12, 11, 13]
    r = client.post("/v1/events:batch", json={"events": [
        {"idempotency_key": "a", "type": "view", "session_id": "s", "product_id": 1}]})
    assert r.status_code == 503 and "retry with the same" in r.json()["detail"]
    archive.broken = False
    assert archive.read_frame().height == 0
    metrics = client.get("/metrics").text
    assert 'sessionrec_archive_events_total{kind="view",result="error"} 2.0' in metrics


def test_a_batch_is_answered_event_by_event(client, archive):
    events = [
        {"idempotency_key": "q1", "type": "view", "session_id": "s", "product_id": 10,
         "timestamp": 1772352000, "user_agent": UA},
        {"idempotency_key": "q2", "type": "purchase", "session_id": "s", "order_id": 5,
         "product_ids": [10, 12], "prices": [3.5, 1.0]},
        {"idempotency_key": "q3", "type": "view", "session_id": "s"},
        {"idempotency_key": "q4", "type": "purchase", "session_id": "s", "order_id": 6,
         "product_ids": [10], "prices": [0]},
        {"idempotency_key": "q5", "type": "teleport", "product_id": 1},
        {"idempotency_key": "q1", "type": "view", "session_id": "s", "product_id": 11},
        {"type": "basket_add", "session_id": "s", "product_id": 11, "placement": "basket"},
        "not an object",
    ]
    r = client.post("/v1/events:batch", json={"events": events})
    assert r.status_code == 200
    body = r.json()
    assert [x["status"] for x in body["results"]] == [
        "accepted", "accepted", "rejected", "rejected", "rejected", "duplicate", "rejected",
        "rejected"]
    fields = [[e["field"] for e in x["errors"]] for x in body["results"]]
    assert fields[2] == ["product_id"] and fields[3] == ["prices"]
    assert fields[4] == ["type"] and fields[6] == ["idempotency_key"]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 5)
    frame = archive.read_frame()
    assert frame["idempotency_key"].to_list() == ["q1", "q2"]
    assert frame["prices"].to_list() == [None, [3.5, 1.0]]
    again = client.post("/v1/events:batch", json={"events": events[:2]}).json()
    assert [x["status"] for x in again["results"]] == ["duplicate", "duplicate"]


def test_batches_are_bounded(client):
    assert client.post("/v1/events:batch", json={"events": []}).status_code == 422
    assert client.post("/v1/events:batch", json={"events": [{}] * 1001}).status_code == 422


def test_experiment_feedback_is_archived_too(tmp_path, runs_root):
    url = f"sqlite:///{(tmp_path / 'archive.db').as_posix()}"
    with experiment_client(tmp_path, runs_root, archive=url) as (client, _config, _):
        rec = client.post("/v1/events", json={"session_id": "s", "product_id": 100,
                                              "user_id": "u", "timestamp": T0}).json()
        rid = rec["recommendation_id"]
        client.post("/v1/feedback/impressions", json={
            "idempotency_key": "i1", "recommendation_id": rid, "product_ids": [101, 102]})
        client.post("/v1/feedback/clicks", json={
            "idempotency_key": "c1", "recommendation_id": rid, "product_id": 101})
        client.post("/v1/feedback/purchases", json={
            "idempotency_key": "p1", "order_id": 9, "user_id": "u", "product_ids": [101]})
    with open_archive(url) as archive:
        frame = archive.read_frame()
    assert frame["kind"].to_list() == ["view", "impression", "click", "purchase"]
    assert frame["recommendation_id"].to_list()[1:3] == [rid, rid]
    assert frame["order_id"].to_list()[3] == "9"


def test_serve_archive_export_prepare_round_trip(tmp_path):
    """Views sent to the API come out of ``prepare`` as the sessions that were sent."""
    url = f"sqlite:///{(tmp_path / 'archive.db').as_posix()}"
    sent = []
    app = create_app(settings(archive=url), bundle=make_bundle(), store=MemoryStore(1800, 86400))
    with TestClient(app) as client:
        for user in (1, 2, 3):
            for day in (1, 2, 3):
                sid = f"u{user}-d{day}"
                for minute, product in enumerate((10, 11, 12) if day % 2 else (13, 10, 11)):
                    ts = f"2026-03-0{day}T0{user}:0{minute}:00Z"
                    r = client.post("/v1/events", json={
                        "session_id": sid, "user_id": user, "product_id": product,
                        "timestamp": ts}, headers={"User-Agent": UA})
                    assert r.headers["Sessionrec-Archived"] == "true"
                    sent.append((user, sid, product))
    raw, out = tmp_path / "raw", tmp_path / "data"
    assert main(["archive", "export", "--archive", url, "--out", str(raw)]) == 0
    assert sorted(p.name for p in (raw / "events").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    cfg = load_config(PrepareConfig, overrides=(
        "filter.min_item_support=1", "filter.min_user_sessions=1", "split.valid=false",
        "partitions=0"))
    manifest = prepare(get_source("galaxus"), raw, out, cfg)
    assert manifest["counts"]["raw_events"] == 27
    got = pl.concat([pl.read_parquet(out / f"{s}.parquet") for s in ("train", "test")])
    got = got.sort("user_id", "ts").select("user_id", "item_id").rows()
    assert got == [(u, p) for u, _, p in sent]  # sent user by user, in time order
    test = pl.read_parquet(out / "test.parquet")
    assert sorted(set(test["user_id"].to_list())) == [1, 2, 3]  # each user's last session
    assert test["item_id"].to_list() == [10, 11, 12] * 3
