"""Fixtures of the serving tests (the test models and helpers are in ``helpers.py``)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest

from sessionrec.models.base import get_model_class
from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.runs import vocab_fingerprint

from .helpers import (
    N_ITEMS,
    N_USERS,
    PRODUCTS,
    REDIS_URL,
    USERS,
    RedisServer,
    cyclic_sessions,
    unavailable,
)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """The ``sessionrec quickstart`` layout: data/{items,users}.parquet and
    runs/{gru4rec,gru4rec-b,hgru4rec,cooc,vsknn,narm}."""
    root = tmp_path_factory.mktemp("serving-runs")
    items = pl.DataFrame({"item_idx": pl.Series(range(N_ITEMS), dtype=pl.Int32),
                          "item_id": PRODUCTS})
    (root / "data").mkdir()
    items.write_parquet(root / "data" / "items.parquet")
    pl.DataFrame({"user_idx": pl.Series(range(N_USERS), dtype=pl.Int32),
                  "user_id": USERS}).write_parquet(root / "data" / "users.parquet")
    train = cyclic_sessions(vocab_fingerprint(items))
    for name, seed in (("gru4rec", 0), ("gru4rec-b", 1)):
        model = GRU4Rec(layers=[8], batch_size=8, n_sample=8, n_epochs=1, progress=False,
                        sample_cache_size=1000, seed=seed).fit(train)
        model.save(root / "runs" / name / "model")
    HGRU4Rec(layers=[8], user_layers=[6], batch_size=4, n_sample=8, n_epochs=1,
             progress=False, sample_cache_size=1000).fit(train).save(
        root / "runs" / "hgru4rec" / "model")
    Cooccurrence().fit(train).save(root / "runs" / "cooc" / "model")
    get_model_class("vsknn")().fit(train).save(root / "runs" / "vsknn" / "model")
    get_model_class("narm")(embedding=8, hidden=8, n_epochs=1, batch_size=16, max_len=5,
                            progress=False).fit(train).save(root / "runs" / "narm" / "model")
    return root


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except Exception as err:
        unavailable(f"no Redis server at {REDIS_URL} ({err})")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    prefix = f"sessionrec-test:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def private_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    server = RedisServer(binary)
    server.start()
    yield server
    server.stop()
