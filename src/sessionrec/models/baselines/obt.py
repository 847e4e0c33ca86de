"""Often bought together, from orders: products that appear in the same order (seed 000).

Seed 000's production baseline counts products bought together, and shows them when a
product is added to the basket. :class:`~.cooc.Cooccurrence` counts items viewed in the same
session; this model counts orders instead, read from ``orders.parquet`` of the prepared data
(``sessionrec orders``, :mod:`sessionrec.data.orders`):

    C[i, j] = |{orders containing both i and j}|   (i != j; C[i, i] = 0)

Only orders placed up to the last event of the training sessions count (the test period's
purchases never reach the model), and the orders must be encoded with the training data's
vocabulary (checked by fingerprint). Scores after a prefix: ``C[x_n, j]`` (the last item, as
the basket add that triggers it), ties and items without orders by training popularity. An
order window without orders leaves ``C`` empty: the model then ranks by popularity.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError
from sessionrec.models.base import register_model
from sessionrec.models.baselines._item_to_item import ItemToItemRecommender
from sessionrec.models.baselines._sparse import check_positive, drop_diagonal

log = logging.getLogger(__name__)


def order_matrix(order_ids: np.ndarray, items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """``C = B^T B`` without its diagonal, ``B`` the binary order x item incidence."""
    _, rows = np.unique(order_ids, return_inverse=True)
    b = sp.csr_matrix((np.ones(len(items)), (rows, items)),
                      shape=(int(rows.max()) + 1 if len(rows) else 0, n_items))
    b.sum_duplicates()
    b.data[:] = 1.0
    return drop_diagonal((b.T @ b).tocsr())


@register_model
class OrdersCooccurrence(ItemToItemRecommender):
    """"Often bought together" counted over orders (see the module docstring).

    ``orders``: the prepared data's ``orders.parquet`` (or its folder); ``pruning`` keeps
    the ``pruning`` largest counts of each row (0 = all).
    """

    name = "obt"

    def __init__(self, orders: str = "", pruning: int = 0) -> None:
        super().__init__(orders=orders, pruning=pruning)
        if not orders:
            raise ConfigError("model obt: set params.orders to the prepared data's "
                              "orders.parquet (written by `sessionrec orders --data DIR`)")
        check_positive("pruning", pruning, allow_zero=True)
        self.orders = str(orders)
        self.pruning = int(pruning)

    def _read_orders(self, train: Sessions) -> pl.DataFrame:
        path = Path(self.orders)
        path = path / "orders.parquet" if path.is_dir() else path
        if not path.is_file():
            raise DataError("no orders file", path=str(path),
                            hint="write it with `sessionrec orders --data PREPARED_DIR`")
        meta_file = path.with_name("orders.json")
        if meta_file.is_file() and train.vocab:
            vocab = json.loads(meta_file.read_text(encoding="utf-8")).get("vocab")
            if vocab != train.vocab:
                raise DataError(f"orders encoded with vocabulary {vocab}, the training data "
                                f"has {train.vocab}", path=str(path),
                                hint="rewrite them with `sessionrec orders` for this data")
        orders = pl.read_parquet(path, columns=["order_id", "item_idx", "ts"])
        cutoff = int(train.ts.max()) if train.n_events else 0
        kept = orders.filter(pl.col("ts").dt.epoch("s") <= cutoff)
        log.info("obt: %d of %d order lines up to the end of training", kept.height,
                 orders.height)
        return kept

    def _build_matrix(self, train: Sessions) -> sp.csr_matrix:
        orders = self._read_orders(train)
        items = orders["item_idx"].to_numpy().astype(np.int64)
        if len(items) and (items.min() < 0 or items.max() >= train.n_items):
            raise DataError(f"order item indices must lie in [0, {train.n_items})",
                            path=self.orders)
        self.n_orders_ = orders["order_id"].n_unique()
        return order_matrix(orders["order_id"].to_numpy(), items, train.n_items)
