"""Placements: a basket add answered with "often bought together", and "for you" on the home
page from the user's state, else the last session's products, else popularity."""

from __future__ import annotations

import pytest

from sessionrec.archive.log import SQLiteArchive
from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, TinyTrainedUserRNN, make_bundle, settings


@pytest.fixture
def parts():
    store, archive = MemoryStore(1800, 86400), SQLiteArchive(":memory:")
    yield store, archive
    archive.close()


def client_of(bundle, parts):
    store, archive = parts
    return TestClient(create_app(settings(), bundle=bundle, store=store, archive=archive))


def test_a_basket_add_gets_what_is_bought_together_and_moves_the_session(parts):
    store, archive = parts
    with client_of(make_bundle(), parts) as client:
        r = client.post("/v1/events", json={"session_id": "s", "product_id": 10, "k": 3,
                                            "placement": "basket"})
        # the cooc row of 10 (item 0): 11 (3 sessions), 13 (1), then popularity: 12
        assert r.json()["Predictions"] == [11, 13, 12]
        assert r.json()["model"] == "basket:cooc" and r.json()["fallback"] is False
        assert store._sessions["s"][1].n_events == 1  # the add moved the session's state
        assert client.post("/v1/events", json={"session_id": "s", "product_id": 10,
                                               "placement": "sidebar"}).status_code == 422
    row = archive.read_frame().row(0, named=True)
    assert (row["kind"], row["placement"]) == ("basket_add", "basket")


def test_home_from_the_last_session_else_popularity(parts):
    with client_of(make_bundle(), parts) as client:
        got = client.get("/v1/users/u1/recommendations", params={"k": 3}).json()
        assert got["Predictions"] == [11, 13, 10] and got["reason"] == "popular"
        for product in (10, 11):
            client.post("/v1/events", json={"session_id": "s1", "user_id": "u1",
                                            "product_id": product})
        got = client.get("/v1/users/u1/recommendations", params={"k": 2}).json()
        # last item 11 (item 1): co-viewed with 10 (3) and 12 (2); 10 was seen: 12, then 13
        assert got["Predictions"] == [12, 13] and got["reason"] == "last_items"


def test_home_from_a_user_state_model(parts):
    bundle = make_bundle(TinyTrainedUserRNN(), users={"u": 0})
    with client_of(bundle, parts) as client:
        got = client.get("/v1/users/u/recommendations").json()
        # the learned state [2, 0] starts the session: scores [2, 0.1, 2.2, -2]
        assert got["Predictions"] == [12, 10, 11, 13]
        assert got["reason"] == "user_state" and got["fallback"] is False
        assert client.get("/v1/users/zz/recommendations").json()["reason"] == "popular"


def test_home_and_basket_in_an_experiment(tmp_path, runs_root):
    from .test_experiment_api import experiment_client, users_of

    with experiment_client(tmp_path, runs_root) as (client, config, _):
        user = users_of(config, "control")[0]
        got = client.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
        assert got["variant"] == "control" and got["recommendation_id"]
        assert got["reason"] == "popular" and len(got["Predictions"]) == 3
        basket = client.post("/v1/events", json={"session_id": "s", "user_id": user,
                                                 "product_id": 100, "placement": "basket"})
        assert basket.status_code == 200 and basket.json()["variant"] == "control"
        again = client.get(f"/v1/users/{user}/recommendations").json()
        assert again["reason"] == "last_items"
