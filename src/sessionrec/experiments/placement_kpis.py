"""KPIs per placement and variant: where the recommendations that were seen, clicked and
credited with a sale were shown (``product_page``, ``basket``, ``home``).

A recommendation row carries its placement; impressions and clicks inherit it through their
``recommendation_id``; a sale credited by the 14-day rule (:func:`.kpis.attribute_sales`)
belongs to the placement of its credited click (the unit's latest click on the product
before the purchase, within the window). Logs written before placements were recorded show
``unrecorded``. Units and orders are per visitor, not per placement: they stay in the
per-variant table.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from sessionrec.experiments.eventlog import LOGGED_PLACEMENTS

UNRECORDED = "unrecorded"
KEYS = ["placement", "variant"]


def _placement() -> pl.Expr:
    return pl.col("placement").fill_null(UNRECORDED)


def _feedback(events: pl.DataFrame) -> pl.DataFrame:
    """Non-orphan impressions and clicks with the placement of their recommendation."""
    recs = events.filter(pl.col("kind") == "recommendation").select(
        "recommendation_id", placement=_placement()).unique("recommendation_id", keep="first")
    return (events.filter(pl.col("kind").is_in(["impression", "click"]) & ~pl.col("orphan"))
            .drop("placement").join(recs, on="recommendation_id", how="left")
            .with_columns(placement=_placement()))


def credited_placements(feedback: pl.DataFrame, sales: pl.DataFrame) -> pl.DataFrame:
    """(line, variant, placement, price) of every sale the 14-day rule credits."""
    clicks = feedback.filter(pl.col("kind") == "click").select(
        "unit_id", "variant", "placement", "seq", product_id=pl.col("product_ids").list.first(),
        click_ts=pl.col("ts"))
    credited = sales.filter(pl.col("variant").is_not_null()).select(
        "line", "unit_id", "product_id", "variant", "price",
        click_ts=pl.col("variant_click_ts"))
    return (credited.join(clicks, on=["unit_id", "product_id", "variant", "click_ts"],
                          how="left")
            .sort("line", "seq", nulls_last=True).unique("line", keep="first")
            .select("line", "variant", "price", placement=_placement()))


def placement_kpis(events: pl.DataFrame, sales: pl.DataFrame,
                   arms: Sequence[str]) -> pl.DataFrame:
    """One row per (placement, variant) with any recommendation: recommendations,
    impressions, clicks, CTR, credited sales, conversion (sales / impressions), credited
    revenue. ``events``: one experiment's checked rows; ``sales``: its attributed sales."""
    recs = (events.filter(pl.col("kind") == "recommendation")
            .with_columns(placement=_placement()).group_by(KEYS)
            .agg(recommendations=pl.len().cast(pl.Int64)))
    feedback = _feedback(events)
    shown = feedback.group_by(KEYS).agg(
        impressions=(pl.col("kind") == "impression").sum().cast(pl.Int64),
        clicks=(pl.col("kind") == "click").sum().cast(pl.Int64))
    sold = credited_placements(feedback, sales).group_by(KEYS).agg(
        sales=pl.len().cast(pl.Int64), attributed_revenue=pl.col("price").sum())
    table = (recs.join(shown, on=KEYS, how="left").join(sold, on=KEYS, how="left")
             .with_columns(pl.col("impressions", "clicks", "sales").fill_null(0),
                           pl.col("attributed_revenue").fill_null(0.0)))
    impressions = pl.when(pl.col("impressions") > 0).then(pl.col("impressions")
                                                          .cast(pl.Float64))
    order = {p: i for i, p in enumerate((*LOGGED_PLACEMENTS, UNRECORDED))}
    arm = {v: i for i, v in enumerate(arms)}
    return (table.with_columns(ctr=pl.col("clicks") / impressions,
                               conversion=pl.col("sales") / impressions,
                               _p=pl.col("placement").replace_strict(order, default=len(order)),
                               _v=pl.col("variant").replace_strict(arm, default=len(arm)))
            .sort("_p", "_v").drop("_p", "_v"))
