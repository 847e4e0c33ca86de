"""KPIs of re-ranked candidate lists (``POST /v1/rank`` answers) per variant.

Definitions (pure Polars over the canonical event frame):

* **list**: one ``recommendation`` row with ``placement = "rank"``; its ``product_ids`` are
  the candidates in answer order, position = index + 1 (1 = ranked first).
* **clicked candidate**: a non-orphan ``click`` row whose ``recommendation_id`` is a list and
  whose product is in it; the same product of the same list counts once however often it was
  clicked. A click on a product the list did not hold is not a clicked candidate.
* **list CTR** = lists with a clicked candidate / lists.
* **mean reciprocal position** = mean over clicked candidates of 1 / position (1.0: every
  click went to the top candidate; under request order it shows where the shop's own order
  put what the visitor wanted).

Both are ratios of sums over units (lists per unit, clicks per unit), so a variant is
compared with control by the delta method over units (:func:`.stats.delta_method_diff`),
Holm-adjusted over the rank comparisons of the report. Lists a variant answered in request
order because its model failed (``fallback``) stay the variant's (intent to treat).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from sessionrec.errors import DataError
from sessionrec.experiments.eventlog import RANK_PLACEMENT
from sessionrec.experiments.stats import Comparison, delta_method_diff, holm

# KPI -> (numerator, denominator) columns of the unit table of :func:`rank_units`
RANK_KPIS: dict[str, tuple[str, str]] = {
    "rank_list_ctr": ("clicked_lists", "lists"),
    "rank_mean_reciprocal_position": ("reciprocal_positions", "clicks"),
}


def rank_lists(events: pl.DataFrame) -> pl.DataFrame:
    """One row per list: ``recommendation_id``, ``variant``, ``unit_id``, ``model``,
    ``fallback``, ``clicks`` (distinct clicked candidates) and ``reciprocal_positions``
    (their sum of 1 / position). ``events``: one experiment's rows (EVENT_SCHEMA)."""
    lists = events.filter((pl.col("kind") == "recommendation")
                          & (pl.col("placement") == RANK_PLACEMENT)).unique(
        "recommendation_id", keep="first", maintain_order=True)
    shown = (lists.select("recommendation_id", "product_ids",
                          position=pl.int_ranges(1, pl.col("product_ids").list.len() + 1))
             .explode(["product_ids", "position"]).rename({"product_ids": "product_id"}))
    clicked = (events.filter((pl.col("kind") == "click") & ~pl.col("orphan"))
               .select("recommendation_id", product_id=pl.col("product_ids").list.first())
               .unique()
               .join(shown, on=["recommendation_id", "product_id"], how="inner")
               .group_by("recommendation_id")
               .agg(clicks=pl.len().cast(pl.Int64),
                    reciprocal_positions=(1.0 / pl.col("position")).sum()))
    return (lists.select("recommendation_id", "variant", "unit_id", "model", "fallback")
            .join(clicked, on="recommendation_id", how="left")
            .with_columns(pl.col("clicks").fill_null(0),
                          pl.col("reciprocal_positions").fill_null(0.0)))


def rank_units(lists: pl.DataFrame) -> pl.DataFrame:
    """One row per (variant, unit_id): ``lists``, ``clicked_lists``, ``clicks``,
    ``reciprocal_positions`` (the input of the unit-level statistics)."""
    return (lists.group_by("variant", "unit_id")
            .agg(lists=pl.len().cast(pl.Int64),
                 clicked_lists=(pl.col("clicks") > 0).sum().cast(pl.Int64),
                 clicks=pl.col("clicks").sum(),
                 reciprocal_positions=pl.col("reciprocal_positions").sum())
            .sort("variant", "unit_id"))


def rank_kpis(lists: pl.DataFrame, arms: Sequence[str]) -> pl.DataFrame:
    """One row per variant with lists, in ``arms`` order: ``models`` (those that ranked its
    lists), ``lists``, ``fallbacks``, ``clicked_lists``, ``clicks``, ``list_ctr``,
    ``mean_reciprocal_position`` (null without lists / clicks)."""
    order = {v: i for i, v in enumerate(arms)}
    table = lists.group_by("variant").agg(
        models=pl.col("model").drop_nulls().unique().sort(),
        lists=pl.len().cast(pl.Int64),
        fallbacks=pl.col("fallback").sum().cast(pl.Int64),
        clicked_lists=(pl.col("clicks") > 0).sum().cast(pl.Int64),
        clicks=pl.col("clicks").sum(),
        reciprocal=pl.col("reciprocal_positions").sum())
    clicks = pl.when(pl.col("clicks") > 0).then(pl.col("clicks").cast(pl.Float64))
    return (table.with_columns(list_ctr=pl.col("clicked_lists") / pl.col("lists"),
                               mean_reciprocal_position=pl.col("reciprocal") / clicks,
                               _v=pl.col("variant").replace_strict(order, default=len(order)))
            .sort("_v").drop("_v", "reciprocal"))


def _arm(units: pl.DataFrame, variant: str, kpi: str) -> tuple[np.ndarray, np.ndarray]:
    num, den = RANK_KPIS[kpi]
    arm = units.filter((pl.col("variant") == variant) & (pl.col(den) > 0))
    if arm.height < 2:
        raise DataError(f"variant {variant!r} has {arm.height} unit(s) with {den}; the "
                        "unit-level test needs at least 2")
    return (arm[num].cast(pl.Float64).to_numpy(), arm[den].cast(pl.Float64).to_numpy())


def compare_rank(units: pl.DataFrame, control: str, variants: Sequence[str],
                 alpha: float = 0.05) -> tuple[list[Comparison], list[str]]:
    """Each rank KPI of each variant against ``control`` (delta method over units, Holm over
    all of them); and a sentence for each comparison left out (too few units)."""
    found: list[tuple[str, str, Any]] = []
    skipped: list[str] = []
    for kpi in RANK_KPIS:
        for variant in (v for v in variants if v != control):
            try:
                num_c, den_c = _arm(units, control, kpi)
                num_v, den_v = _arm(units, variant, kpi)
            except DataError as err:
                skipped.append(f"{kpi} of {variant}: not compared ({err})")
                continue
            found.append((kpi, variant, delta_method_diff(num_v, den_v, num_c, den_c, alpha)))
    adjusted = holm([d.p_value for _, _, d in found]) if found else []
    return ([Comparison(kpi=kpi, variant=variant, control=control, delta=d, bootstrap=None,
                        p_holm=float(p), significant=bool(p < alpha))
             for (kpi, variant, d), p in zip(found, adjusted, strict=True)], skipped)


def rank_summary(events: pl.DataFrame, control: str, arms: Sequence[str],
                 alpha: float = 0.05) -> tuple[pl.DataFrame, list[Comparison], list[str]] | None:
    """(per-variant rank KPIs, comparisons with control, comparisons left out), or None when
    the experiment logged no rank lists."""
    lists = rank_lists(events)
    if lists.is_empty():
        return None
    tested = [v for v in arms if v in set(lists["variant"].drop_nulls())]
    comparisons, skipped = compare_rank(rank_units(lists), control, tested, alpha)
    return rank_kpis(lists, arms), comparisons, skipped
