"""Cold-start products served with a p2v model (``embed --from-run`` + ``serve --embeddings``).

A 2-dimensional p2v model whose vectors are set by hand, so every cosine is computable::

    warm items (unit vectors)      500 (1, 0)   501 (0.8, 0.6)   502 (0, 1)   503 (-1, 0)
    brand / category               a / x        a / x            b / y        b / y
    token vectors                  brand:a (0.6, 1.0)  category x (0.6, 0.6)
                                   brand:b (-0.6, -1.0) category y (-0.6, -0.6)

A catalogue product without views is the mean of its tokens' vectors: 900 (a, x) ->
(0.6, 0.8); 901 (b, y) -> (-0.6, -0.8); 902 (brand and category never seen) has no usable
token and is left out. Cosines: 900 to 500 0.6, 501 0.96, 502 0.8, 503 -0.6; 901 to 503 0.6,
500 -0.6, 502 -0.8, 501 -0.96, 900 -1.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.cli import main
from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.coldstart import read_catalog
from sessionrec.embeddings.metadata import item_metadata_tokens
from sessionrec.embeddings.store import read_store, write_store
from sessionrec.errors import SessionRecError
from sessionrec.models.p2v import Prod2VecRecommender
from sessionrec.models.p2v_coldstart import store_with_catalog
from sessionrec.runs import vocab_fingerprint
from sessionrec.serving.app import create_app
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, settings

ITEMS = pl.DataFrame({"item_idx": pl.Series(range(4), dtype=pl.Int32),
                      "item_id": [500, 501, 502, 503], "brand": ["a", "a", "b", "b"],
                      "category": ["x", "x", "y", "y"]})
VECTORS = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]
TOKENS = {"brand:a": [0.6, 1.0], "brand:b": [-0.6, -1.0], "type:x": [0.6, 0.6],
          "type:y": [-0.6, -0.6]}
CATALOG = "product_id,brand,category\n900,a,x\n901,b,y\n902,zzz,qqq\n500,a,x\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("p2v-cold")
    (root / "data").mkdir()
    ITEMS.write_parquet(root / "data" / "items.parquet")
    train = Sessions.from_lists([[0, 1, 2, 3], [3, 2, 1, 0]], 4)
    train = Sessions(train.items, train.offsets, train.ts, train.users, train.session_ids, 4,
                     vocab_fingerprint(ITEMS))
    model = Prod2VecRecommender(dim=2, epochs=1, decay=0.7)
    model.set_item_table(ITEMS)
    model.fit(train)
    names = item_metadata_tokens(ITEMS).names
    assert sorted(names) == sorted(TOKENS)
    model.vectors_ = torch.tensor(VECTORS)
    model.token_vectors_ = torch.tensor([TOKENS[n] for n in names])
    model.save(root / "runs" / "p2v" / "model")
    (root / "catalog.csv").write_text(CATALOG)
    return root / "runs" / "p2v"


@pytest.fixture(scope="module")
def store_path(run):
    out = run.parent.parent / "store.parquet"
    assert main(["embed", "--from-run", str(run), "--catalog",
                 str(run.parent.parent / "catalog.csv"), "--out", str(out)]) == 0
    return out


def test_the_store_holds_the_runs_vectors_and_the_placed_products(store_path):
    store = read_store(store_path)
    assert store.product_ids.to_list() == [500, 501, 502, 503, 900, 901]
    assert store.metadata["cold_start"].to_list() == [False] * 4 + [True] * 2
    np.testing.assert_allclose(store.vectors[4:], [[0.6, 0.8], [-0.6, -0.8]], atol=1e-6)


@pytest.fixture(params=["exact", "ann"])
def client(request, run, store_path, monkeypatch):
    if request.param == "ann":  # the index over the trained items, cold ones searched exactly
        monkeypatch.setattr("sessionrec.models.p2v.EXACT_BELOW", 0)
    bundle = load_bundle(run, embeddings=store_path)
    assert (bundle.model.ann is not None) == (request.param == "ann")
    app = create_app(settings(), bundle=bundle,
                     store=MemoryStore(session_ttl_s=1800, user_ttl_s=86400))
    with TestClient(app) as c:
        yield c


def test_similar_to_and_from_cold_start_products(client):
    body = client.get("/v1/products/900/similar", params={"k": 4}).json()
    assert body["Predictions"] == [501, 502, 500, 503]
    np.testing.assert_allclose(body["similarity"], [0.96, 0.8, 0.6, -0.6], atol=1e-5)
    assert body["product_cold_start"] is True and body["cold_start"] == [False] * 4
    body = client.get("/v1/products/500/similar", params={"k": 3}).json()
    assert body["Predictions"] == [501, 900, 502]
    assert body["cold_start"] == [False, True, False] and body["product_cold_start"] is False
    body = client.get("/v1/products/901/similar", params={"k": 5}).json()
    assert body["Predictions"] == [503, 500, 502, 501, 900]
    assert body["cold_start"] == [False] * 4 + [True]


def test_unknown_products_are_404(client):
    for pid in ("902", "999"):  # no usable metadata token; not anywhere
        r = client.get(f"/v1/products/{pid}/similar")
        assert r.status_code == 404 and pid in r.json()["detail"]
        assert "cold-start" in r.json()["detail"]


def test_recommendations_rank_and_take_clicks_on_cold_start_products(client):
    # after 502 (0, 1): 900 0.8, 501 0.6, then 500 and 503 tie at 0
    body = client.post("/v1/events", json={"session_id": "s", "product_id": 502,
                                           "k": 2}).json()
    assert body["Predictions"] == [900, 501] and body["cold_start"] == [True, False]
    # a click on 900: session (0.7 * (0, 1) + (0.6, 0.8)) / |.| = (0.371, 0.928);
    # 501 0.854, 500 0.371, 503 -0.371, 901 -0.965 (502 and 900 seen)
    body = client.post("/v1/events", json={"session_id": "s", "product_id": 900,
                                           "k": 4}).json()
    assert body["fallback"] is False
    assert body["Predictions"] == [501, 500, 503, 901]
    assert body["cold_start"] == [False, False, False, True]
    again = client.get("/v1/sessions/s/recommendations", params={"k": 2}).json()
    assert again["Predictions"] == [501, 500] and again["cold_start"] == [False, False]


def test_a_store_of_other_vectors_is_refused(run, tmp_path):
    model = Prod2VecRecommender.load(run / "model")
    model.vectors_ = model.vectors_.flip(0)  # another training's space
    store, _ = store_with_catalog(model, ITEMS, read_catalog(run.parent.parent / "catalog.csv"))
    write_store(tmp_path / "other.parquet", store)
    with pytest.raises(SessionRecError, match="not written from the served model"):
        load_bundle(run, embeddings=tmp_path / "other.parquet")


def test_without_a_store_nothing_is_flagged(run):
    bundle = load_bundle(run)
    assert bundle.n_cold == 0 and bundle.cold_flags([0, 1]) is None
