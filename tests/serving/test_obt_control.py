"""An experiment whose control is "often bought together" counted over orders."""

from __future__ import annotations

import json

import polars as pl
import pytest

from sessionrec.errors import ConfigError
from sessionrec.experiments.config import load_experiment
from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.models.baselines.obt import OrdersCooccurrence
from sessionrec.runs import vocab_fingerprint

from .helpers import cyclic_sessions
from .test_experiment_api import experiment_client, users_of, write_experiment


def obt_run(folder, runs_root):
    items = pl.read_parquet(runs_root / "data" / "items.parquet")
    vocab = vocab_fingerprint(items)
    # orders a and b both hold products 100 and 107; b also 103 (item index = product - 100)
    pl.DataFrame({"order_id": ["a", "a", "b", "b", "b"], "item_idx": [0, 7, 0, 7, 3],
                  "ts": [0] * 5}).with_columns(
        ts=pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC")
    ).write_parquet(folder / "orders.parquet")
    (folder / "orders.json").write_text(json.dumps({"vocab": vocab}))
    OrdersCooccurrence(orders=str(folder / "orders.parquet")).fit(
        cyclic_sessions(vocab)).save(folder / "obt" / "model")
    return folder / "obt"


def test_the_control_ranks_what_was_bought_together_first(tmp_path, runs_root):
    run = obt_run(tmp_path, runs_root)
    extra = f'orders = "{run.as_posix()}"'
    with experiment_client(tmp_path, runs_root, extra,
                           vocab=str(runs_root / "data")) as (client, config, _):
        assert config.orders == run
        user = users_of(config, "control")[0]
        got = client.post("/v1/events", json={"session_id": "s", "user_id": user,
                                              "product_id": 100}).json()
        assert got["variant"] == "control"
        assert got["Predictions"][:2] == [107, 103]  # bought with 100 in 2 and 1 orders


def test_an_orders_run_of_another_model_is_refused(tmp_path, runs_root):
    vocab = vocab_fingerprint(pl.read_parquet(runs_root / "data" / "items.parquet"))
    Cooccurrence().fit(cyclic_sessions(vocab)).save(tmp_path / "notobt" / "model")
    path = write_experiment(tmp_path, runs_root, f'orders = "{(tmp_path / "notobt").as_posix()}"')
    with pytest.raises(ConfigError, match=r"experiment\.orders: .* holds a 'cooc' model"):
        load_experiment(path)
