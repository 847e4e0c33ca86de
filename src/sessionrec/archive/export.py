"""``sessionrec archive export``: the archive as Galaxus-format raw data that ``prepare`` reads.

Writes (atomically: a temporary folder renamed at the end)::

    OUT/
      events/part-00000.parquet   the product page views, one shard per UTC day, with
                                  ProductId, LastLoggedInUserId, UserId, SessionId, UserAgent,
                                  Timestamp (what sessionrec.data.sources.galaxus reads)
      orders.parquet              the purchases, one row per order line: OrderId, UserId,
                                  SessionId, ProductId, Price, Timestamp (as the synthetic
                                  generator writes them, so "often bought together" and the
                                  simulator read them the same way)
      export.json                 since, counts, the archive's kinds

``LastLoggedInUserId`` is the device's last logged-in user up to that view (over the whole
archive, also before ``since``), as the shop's own log would have it; without a device it is
the view's user. Ids that are all integers are written as integers (the synthetic data's
form), else as text.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import polars as pl

from sessionrec.data.io import atomic_directory
from sessionrec.errors import EmptyDataError

log = logging.getLogger(__name__)

INT_TEXT = r"^-?[0-9]{1,15}$"  # ids that survive a round trip through Int64 unchanged


def _native_ids(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Integer columns where every non-null value of a column is an integer's text."""
    fixes = []
    for c in columns:
        values = df[c].drop_nulls()
        if values.len() and values.str.contains(INT_TEXT).all():
            fixes.append(pl.col(c).cast(pl.Int64))
    return df.with_columns(fixes) if fixes else df


def views_frame(archive: pl.DataFrame, since: datetime | None) -> pl.DataFrame:
    """The Galaxus event columns of the archived views (``ts >= since``), in time order."""
    views = archive.filter(pl.col("kind") == "view").sort("ts", "seq")
    device = pl.coalesce("device_id", pl.lit("\x00session:") + pl.col("session_id"))
    views = views.with_columns(
        LastLoggedInUserId=pl.col("user_id").forward_fill().over(device))
    if since is not None:
        views = views.filter(pl.col("ts") >= since)
    return views.select(
        ProductId=pl.col("product_ids").list.first(),
        LastLoggedInUserId=pl.col("LastLoggedInUserId"),
        UserId=pl.col("user_id"),
        SessionId=pl.col("session_id"),
        UserAgent=pl.col("user_agent"),
        Timestamp=pl.col("ts"),
    )


def orders_frame(archive: pl.DataFrame, since: datetime | None) -> pl.DataFrame:
    """The archived purchases as order lines (``ts >= since``)."""
    orders = archive.filter(pl.col("kind") == "purchase")
    if since is not None:
        orders = orders.filter(pl.col("ts") >= since)
    orders = orders.with_columns(
        pl.col("prices").fill_null(pl.col("product_ids").list.eval(
            pl.lit(None, dtype=pl.Float64))))
    return orders.explode("product_ids", "prices").sort("ts", "seq").select(
        OrderId=pl.col("order_id"),
        UserId=pl.col("user_id"),
        SessionId=pl.col("session_id"),
        ProductId=pl.col("product_ids"),
        Price=pl.col("prices").cast(pl.Float64),
        Timestamp=pl.col("ts"),
    )


def export_galaxus(archive: pl.DataFrame, out: Path, since: datetime | None = None,
                   overwrite: bool = False) -> dict:
    """Write the archive frame (:data:`~.record.ARCHIVE_SCHEMA`) as Galaxus raw data in ``out``.

    Raises :class:`EmptyDataError` when there is no view at or after ``since`` (nothing
    ``prepare`` could read), leaving ``out`` untouched.
    """
    views = views_frame(archive, since)
    if views.height == 0:
        raise EmptyDataError(f"the archive holds no views since {since or 'its start'} "
                             f"({archive.height:,} events in all)",
                             hint="serve with --archive and send events first, or choose an "
                                  "earlier --since")
    orders = orders_frame(archive, since)
    id_columns = ["ProductId", "LastLoggedInUserId", "UserId", "SessionId"]
    both = pl.concat([views.select(id_columns).with_columns(src=pl.lit(0)),
                      orders.select("ProductId", "UserId", "SessionId").with_columns(
                          LastLoggedInUserId=pl.col("UserId"), src=pl.lit(1))
                      .select(*id_columns, "src")])
    both = _native_ids(both, id_columns)
    views = views.with_columns(both.filter(pl.col("src") == 0).select(id_columns))
    orders = orders.with_columns(both.filter(pl.col("src") == 1).select(
        "ProductId", "UserId", "SessionId"))
    days = views.with_columns(day=pl.col("Timestamp").dt.date()).partition_by(
        "day", maintain_order=True, include_key=False)
    summary = {"since": since.isoformat() if since else None, "views": views.height,
               "orders": orders["OrderId"].n_unique(), "order_lines": orders.height,
               "shards": len(days), "archive_events": archive.height}
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        (tmp / "events").mkdir()
        for i, shard in enumerate(days):
            shard.write_parquet(tmp / "events" / f"part-{i:05d}.parquet")
        if orders.height:
            orders.write_parquet(tmp / "orders.parquet")
        (tmp / "export.json").write_text(json.dumps(summary, indent=2) + "\n",
                                         encoding="utf-8")
    log.info("exported %d views in %d shards and %d order lines to %s", views.height,
             len(days), orders.height, out)
    return summary
