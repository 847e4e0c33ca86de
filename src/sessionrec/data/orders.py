"""Orders of a prepared data set: which products were bought together (seed 000, §2.1.3).

``sessionrec orders --data PREPARED`` reads the purchases of the raw data the prepared
directory was made from (its ``manifest.json``) and writes, beside the splits::

    PREPARED/orders.parquet   order_id (text), item_idx (the prepared vocabulary), ts
    PREPARED/orders.json      vocabulary fingerprint, source, counts (orders, lines, and the
                              lines of products the vocabulary does not know, dropped)

Purchases per source (:func:`sessionrec.experiments.visitors.raw_events`): the synthetic
Galaxus-format data's ``orders.parquet`` (and the archive's export), Diginetica's
``train-purchases``, Taobao's ``buy`` and REES46's ``purchase`` events; sources without order
ids get one order per (raw session, purchase time). Every purchase is written, whatever its
time: the model that reads them (``obt``) keeps only orders up to the end of its training
data, so no test purchase reaches it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import polars as pl

from sessionrec.data.io import atomic_write_text
from sessionrec.errors import DataError

log = logging.getLogger(__name__)

ORDERS_FILE = "orders.parquet"
ORDERS_META = "orders.json"


def order_lines(purchases: pl.DataFrame, items: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Purchases (``order_id``, ``item_id``, ``ts``) as encoded order lines (one per distinct
    product of an order) and the number of lines whose product ``items`` does not know."""
    vocab = items.select(pl.col("item_id").cast(pl.String), pl.col("item_idx").cast(pl.Int64))
    lines = purchases.select(pl.col("order_id").cast(pl.String),
                             pl.col("item_id").cast(pl.String), "ts")
    known = lines.join(vocab, on="item_id", how="inner")
    unknown = lines.height - known.height
    known = known.group_by("order_id", "item_idx").agg(pl.col("ts").min())
    return known.select("order_id", "item_idx", "ts").sort("ts", "order_id", "item_idx"), unknown


def write_orders(prepared: Path, raw: Path | None = None) -> dict:
    """Write ``orders.parquet`` / ``orders.json`` into ``prepared`` (see the module docstring);
    ``raw``: the raw data (default: the input recorded in the manifest)."""
    from sessionrec.data.sources import get_source
    from sessionrec.experiments.visitors import PURCHASE, prepared_options, raw_events
    from sessionrec.runs import vocab_fingerprint

    prepared = Path(prepared)
    options = prepared_options(prepared)
    raw = Path(raw or options["input"])
    if not raw.exists():
        raise DataError("the raw data of the prepared directory is not there", path=str(raw),
                        hint="pass the raw data's folder with --raw")
    purchases = (raw_events(get_source(options["source"]), raw)
                 .filter(pl.col("kind") == PURCHASE).select("order_id", "item_id", "ts")
                 .collect())
    items = pl.read_parquet(prepared / "items.parquet")
    lines, unknown = order_lines(purchases, items)
    meta = {"vocab": vocab_fingerprint(items), "source": options["source"], "raw": str(raw),
            "orders": lines["order_id"].n_unique(), "lines": lines.height,
            "unknown_product_lines": unknown, "purchase_events": purchases.height}
    fd, tmp = tempfile.mkstemp(prefix=".orders.", suffix=".parquet", dir=prepared)
    os.close(fd)
    try:
        lines.write_parquet(tmp)
        os.replace(tmp, prepared / ORDERS_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_text(prepared / ORDERS_META, json.dumps(meta, indent=2) + "\n")
    if not lines.height:
        log.warning("no purchases of known products in %s: 'obt' will rank by popularity", raw)
    return meta
