"""Fixtures of the console tests: a quickstart-layout runs folder whose catalogue has names
(one of them markup), categories and brands, and runs gru4rec, hgru4rec, cooc and a run that
cannot be served (no model files)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.runs import vocab_fingerprint
from tests.serving.helpers import N_ITEMS, N_USERS, PRODUCTS, USERS, cyclic_sessions

MARKUP = '<img src=x onerror="window.__xss=1"><b>Bold</b> & Co'
NAMES = [MARKUP if i == 3 else f"Product {chr(65 + i)}" for i in range(N_ITEMS)]


@pytest.fixture(scope="session")
def console_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("console-runs")
    items = pl.DataFrame({
        "item_idx": pl.Series(range(N_ITEMS), dtype=pl.Int32), "item_id": PRODUCTS,
        "train_events": [100 - i for i in range(N_ITEMS)], "name": NAMES,
        "category": ["Audio" if i % 2 else "Garden" for i in range(N_ITEMS)],
        "brand": ["Kadeka" if i < 6 else "Lokaka" for i in range(N_ITEMS)],
        "price": [10.0 + i for i in range(N_ITEMS)]})
    (root / "data").mkdir()
    items.write_parquet(root / "data" / "items.parquet")
    pl.DataFrame({"user_idx": pl.Series(range(N_USERS), dtype=pl.Int32),
                  "user_id": USERS}).write_parquet(root / "data" / "users.parquet")
    (root / "data" / "manifest.json").write_text(json.dumps(
        {"source": "galaxus", "counts": {"raw_events": 1234}, "n_items": N_ITEMS,
         "splits": {"train": {"events": 400, "sessions": 120}}}))
    train = cyclic_sessions(vocab_fingerprint(items))
    runs = root / "runs"
    GRU4Rec(layers=[8], batch_size=8, n_sample=8, n_epochs=2, progress=False,
            sample_cache_size=1000).fit(train).save(runs / "gru4rec" / "model")
    HGRU4Rec(layers=[8], user_layers=[6], batch_size=4, n_sample=8, n_epochs=1,
             progress=False, sample_cache_size=1000).fit(train).save(
        runs / "hgru4rec" / "model")
    Cooccurrence().fit(train).save(runs / "cooc" / "model")
    # a run directory as `sessionrec train` leaves it: config, metrics, ranks
    (runs / "gru4rec" / "config.toml").write_text('seed = 0\n[model]\nname = "gru4rec"\n')
    (runs / "gru4rec" / "metrics.json").write_text(json.dumps({
        "dataset": "console-test", "model": "gru4rec", "protocol": "next-item",
        "ties": "pessimistic", "n_predictions": 4, "params": {"layers": [8]},
        "metrics": {"recall@20": 0.75, "mrr@20": 0.375},
        "train": {"history": {"epochs": [{"epoch": 1, "loss": 2.0, "valid_mrr@20": 0.2},
                                         {"epoch": 2, "loss": 1.5, "valid_mrr@20": 0.3}]}}}))
    pl.DataFrame({"target_event": [1, 2, 3, 4], "session": [0, 0, 1, 1],
                  "position": [1, 2, 1, 2], "rank": [1.0, 4.0, 30.0, 2.0]}).write_parquet(
        runs / "gru4rec" / "ranks.parquet")
    (runs / "broken").mkdir()
    return root
