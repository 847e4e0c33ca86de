"""Often bought together from orders: counts over orders, the training cut-off, the
vocabulary check, and the orders of a synthetic prepared data set."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from sessionrec.data.orders import order_lines
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError
from sessionrec.models.base import SessionRecommender
from sessionrec.models.baselines.obt import OrdersCooccurrence, order_matrix

DAY = 86_400


def sessions(vocab: str = "5:v") -> Sessions:
    # two sessions, both ending on day 1: the training data ends at 1 * DAY + 60
    return Sessions(items=np.array([0, 1, 2, 3, 4]), offsets=np.array([0, 2, 5]),
                    ts=np.array([0, 60, DAY, DAY + 30, DAY + 60]), users=np.array([-1, -1]),
                    session_ids=np.array([1, 2]), n_items=5, vocab=vocab)


def write_orders(folder, rows, vocab="5:v"):
    pl.DataFrame(rows, schema={"order_id": pl.String, "item_idx": pl.Int64, "ts": pl.Int64},
                 orient="row").with_columns(
        ts=pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC")
    ).write_parquet(folder / "orders.parquet")
    (folder / "orders.json").write_text(json.dumps({"vocab": vocab}))
    return folder / "orders.parquet"


def test_order_matrix_counts_orders_not_lines():
    # order a: 0, 1, 1 (a repeated line); order b: 0, 1, 2; order c: 3 alone
    c = order_matrix(np.array(["a", "a", "a", "b", "b", "b", "c"]),
                     np.array([0, 1, 1, 0, 1, 2, 3]), 5).toarray()
    expected = np.zeros((5, 5))
    expected[0, 1] = expected[1, 0] = 2
    expected[0, 2] = expected[2, 0] = expected[1, 2] = expected[2, 1] = 1
    np.testing.assert_array_equal(c, expected)


def test_only_orders_up_to_the_end_of_training_count(tmp_path):
    path = write_orders(tmp_path, [("a", 4, 100), ("a", 2, 100),   # day 0: counts
                                   ("b", 4, DAY + 60), ("b", 0, DAY + 60),  # at the end: counts
                                   ("c", 4, DAY + 61), ("c", 1, DAY + 61)])  # after: never
    model = OrdersCooccurrence(orders=str(path)).fit(sessions())
    assert model.n_orders_ == 2
    scores = model.score([[4]])[0].numpy()
    # last item 4: co-bought with 2 and 0 once each; 1 was bought with it only after training
    assert scores[2] == 1 and scores[0] == 1 and scores[1] == 0
    model.save(tmp_path / "model")
    again = SessionRecommender.load(tmp_path / "model", vocab="5:v")
    np.testing.assert_array_equal(again.score([[4]]).numpy(), model.score([[4]]).numpy())


def test_orders_of_another_vocabulary_are_refused(tmp_path):
    path = write_orders(tmp_path, [("a", 0, 10)], vocab="5:other")
    with pytest.raises(DataError, match="orders encoded with vocabulary 5:other"):
        OrdersCooccurrence(orders=str(path)).fit(sessions())
    with pytest.raises(ConfigError, match=r"set params\.orders"):
        OrdersCooccurrence()


def test_no_orders_in_the_window_ranks_by_popularity(tmp_path):
    path = write_orders(tmp_path, [("late", 0, 10 * DAY), ("late", 1, 10 * DAY)])
    model = OrdersCooccurrence(orders=str(tmp_path)).fit(sessions())
    assert model.n_orders_ == 0 and model.matrix_.nnz == 0
    assert path.is_file()


def test_order_lines_encode_products_and_drop_unknown_ones():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    purchases = pl.DataFrame({"order_id": ["1", "1", "1", "2"], "item_id": [10, 11, 10, 99],
                              "ts": [t] * 4})
    items = pl.DataFrame({"item_idx": [0, 1], "item_id": [10, 11]})
    lines, unknown = order_lines(purchases, items)
    assert unknown == 1
    assert sorted(lines.select("order_id", "item_idx").rows()) == [("1", 0), ("1", 1)]


def test_orders_of_a_synthetic_prepared_set(tmp_path):
    from sessionrec.cli import main
    from sessionrec.data.synth import generate

    raw, data = tmp_path / "raw", tmp_path / "data"
    generate(raw, 20_000, seed=3, n_users=300, n_items=200, orders=True)
    assert main(["prepare", "--source", "galaxus", "--input", str(raw), "--out", str(data),
                 "--set", "partitions=0"]) == 0
    assert main(["orders", "--data", str(data)]) == 0
    meta = json.loads((data / "orders.json").read_text())
    raw_orders = pl.read_parquet(raw / "orders.parquet")
    assert meta["purchase_events"] == raw_orders.height
    assert meta["lines"] + meta["unknown_product_lines"] <= raw_orders.height
    assert meta["orders"] > 0 and meta["lines"] > 0
    run = tmp_path / "obt"
    assert main(["train", "--set", f"data.prepared={data}", "--set", "model.name=obt", "--set",
                 f"model.params.orders={data / 'orders.parquet'}", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "obt" and "recall@20" in metrics["metrics"]
