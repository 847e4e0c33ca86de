"""p2v served: a run directory loads with its ANN index beside the weights, the step and the
similar endpoint answer through it, a stale index is rebuilt, unknown products are 404."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.ann import index_path, read_header
from sessionrec.models.base import WEIGHTS_FILE
from sessionrec.models.p2v import Prod2VecRecommender
from sessionrec.runs import vocab_fingerprint
from sessionrec.serving.app import create_app
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.store import MemoryStore

from .helpers import TestClient, settings

N = 40


@pytest.fixture(scope="module")
def p2v_run(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("p2v-run")
    items = pl.DataFrame({"item_idx": pl.Series(range(N), dtype=pl.Int32),
                          "item_id": [500 + i for i in range(N)]})
    (root / "data").mkdir()
    items.write_parquet(root / "data" / "items.parquet")
    rng = np.random.default_rng(0)
    # two halves of the catalogue that are never viewed together
    sessions = [list(half * 20 + rng.integers(0, 20, 6)) for half in (0, 1) * 100]
    train = Sessions.from_lists(sessions, N)
    train = Sessions(train.items, train.offsets, train.ts, train.users, train.session_ids, N,
                     vocab_fingerprint(items))
    Prod2VecRecommender(dim=8, epochs=5).fit(train).save(root / "runs" / "p2v" / "model")
    # force the ANN path on this small catalogue
    monkeypatch_module.setattr("sessionrec.models.p2v.EXACT_BELOW", 0)
    return root / "runs" / "p2v"


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_bundle_builds_the_index_beside_the_weights_and_reuses_it(p2v_run):
    bundle = load_bundle(p2v_run)
    weights = p2v_run / "model" / WEIGHTS_FILE
    assert bundle.model.ann is not None and bundle.similar.ann is bundle.model.ann
    header = read_header(index_path(weights))
    assert header["n"] == N and header["calibration_recall"] >= 0.95
    again = load_bundle(p2v_run)
    assert again.model.ann.meta["fingerprint"] == header["fingerprint"]
    # recommendations after a click stay in the clicked half of the catalogue
    states = bundle.step.start_states(None, 1)
    _, items, scores = bundle.step.step(states, np.array([3]), k=5, exclude=[np.array([3])])
    assert np.isfinite(scores).all() and 3 not in items[0]
    assert (items[0] < 20).sum() >= 4


def test_a_stale_index_is_rebuilt(p2v_run, tmp_path):
    import shutil

    run = tmp_path / "p2v"
    shutil.copytree(p2v_run, run)
    shutil.copytree(p2v_run.parent.parent / "data", tmp_path / "data")
    path = index_path(run / "model" / WEIGHTS_FILE)
    other = index_path(tmp_path / "other")
    model = Prod2VecRecommender.load(run / "model")
    model.vectors_ = model.vectors_.flip(0)  # another store's vectors
    model.use_index(tmp_path / "other", min_items=0)
    shutil.copy(other, path)  # an index of other vectors beside these weights
    bundle = load_bundle(run, vocab=tmp_path / "data")
    assert bundle.model.ann.meta["fingerprint"] != read_header(other)["fingerprint"]


def test_similar_endpoint_through_the_index(p2v_run):
    app = create_app(settings(), bundle=load_bundle(p2v_run),
                     store=MemoryStore(session_ttl_s=1800, user_ttl_s=86400))
    with TestClient(app) as client:
        body = client.get("/v1/products/503/similar", params={"k": 5}).json()
        assert len(body["Predictions"]) == 5 and 503 not in body["Predictions"]
        assert sum(p < 520 for p in body["Predictions"]) >= 4
        assert body["similarity"] == sorted(body["similarity"], reverse=True)
        r = client.get("/v1/products/999/similar")
        assert r.status_code == 404 and "999" in r.json()["detail"]
        client.post("/v1/events", json={"session_id": "s", "product_id": 525})
        recs = client.get("/v1/sessions/s/recommendations",
                          params={"k": 10}).json()["Predictions"]
        assert len(recs) == 10 and sum(p >= 520 for p in recs) >= 9
