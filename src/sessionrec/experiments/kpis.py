"""Online-experiment KPIs computed from the canonical event frame (pure Polars functions).

Definitions (issue 8; seed 000, section 2.4):

* **impression**: one non-orphan ``impression`` row (a recommendation list, or part of one,
  that entered the viewport). CTR = clicks / impressions, both counted per variant.
* **sale**: one purchased product line, i.e. one element of a ``purchase`` row's
  ``product_ids`` (an order of three products is three sales, each credited on its own).
* **14-day rule** (the thesis's attribution): a sale of product ``p`` at time ``t`` by unit
  ``u`` is credited when ``u`` clicked ``p`` in a recommendation at ``t_c`` with
  ``t - window < t_c <= t``; it goes to the variant of the latest such click. One sale is
  credited at most once, however often ``p`` was clicked. Times are ``ts`` (shop time), never
  ``seq``: out-of-order delivery changes nothing.
* **same-session rule** (reported beside it; the thesis rejects it): a sale is credited when
  the purchase's session holds a recommendation click at or before the purchase, whatever
  product was clicked, to the variant of the latest such click. That is how the rule
  over-credits (the product need not have been recommended) and under-credits (a purchase in a
  later session gets nothing).
* conversion = credited sales / impressions; revenue per impression = credited revenue /
  impressions, reported only when some purchase carries prices.
* **day**: the UTC calendar day of the event's ``ts``; a sale counts on its purchase's day.
* **units**: distinct ``unit_id`` of ``assignment`` rows per variant (of any non-orphan row when
  the log has no assignment rows). Holdout units get no recommendations, so they have no CTR;
  their orders and revenue per unit are reported like every variant's.

Orphan feedback (unknown or expired ``recommendation_id``) is never attributed, only counted:
"expired" when its recommendation is in the log, "unknown" otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import polars as pl

from sessionrec.errors import ConfigError, DataError
from sessionrec.experiments.config import HOLDOUT
from sessionrec.experiments.eventlog import EVENT_SCHEMA

# The columns of the canonical event frame the analysis reads.
REQUIRED_COLUMNS: dict[str, pl.DataType] = {
    name: EVENT_SCHEMA[name]
    for name in ("seq", "kind", "experiment", "variant", "unit_id", "session_id",
                 "recommendation_id", "product_ids", "prices", "order_id", "ts", "orphan",
                 "fallback")
}
_FEEDBACK = ("impression", "click")


@dataclass(frozen=True)
class ExperimentParams:
    """The few experiment settings the analysis needs (a subset of ``ExperimentConfig``).

    ``weights`` are the shares of the non-holdout traffic, in the config's variant order.
    """

    name: str
    control: str
    weights: Mapping[str, float] = field(default_factory=dict)
    holdout: float = 0.0
    attribution_window_days: float = 14.0

    def __post_init__(self) -> None:
        if self.control not in self.weights:
            raise ConfigError(f"control variant {self.control!r} is not among the variants "
                              f"{list(self.weights)} of experiment {self.name!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout must lie in [0, 1), got {self.holdout}")
        if self.attribution_window_days <= 0:
            raise ConfigError("attribution_window_days must be positive, "
                              f"got {self.attribution_window_days}")

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(self.weights)

    @property
    def arms(self) -> tuple[str, ...]:
        """Variant names, then ``holdout`` when the experiment has one."""
        return self.variant_names + ((HOLDOUT,) if self.holdout > 0 else ())

    def expected_shares(self) -> dict[str, float]:
        """Share of all units each arm should get (holdout included): the SRM check's null."""
        shares = {v: (1.0 - self.holdout) * w for v, w in self.weights.items()}
        if self.holdout > 0:
            shares[HOLDOUT] = self.holdout
        return shares


def experiment_params(config: Any) -> ExperimentParams:
    """:class:`ExperimentParams` from an ``ExperimentConfig`` (or anything with its fields).

    An :class:`ExperimentParams` is returned unchanged.
    """
    if isinstance(config, ExperimentParams):
        return config
    weights = config.weights() if callable(config.weights) else config.weights
    return ExperimentParams(
        name=str(config.name),
        control=str(config.control),
        weights=dict(weights),
        holdout=float(config.holdout),
        attribution_window_days=float(config.attribution_window_days),
    )


@dataclass(frozen=True)
class KpiTables:
    """Everything :func:`compute_kpis` derives from one experiment's events."""

    variants: pl.DataFrame   # one row per arm
    daily: pl.DataFrame      # one row per arm x UTC day with any event
    units: pl.DataFrame      # one row per (variant, unit_id): input of unit-level statistics
    unit_days: pl.DataFrame  # one row per (variant, unit_id, day): for sequential looks
    sales: pl.DataFrame      # one row per purchased product line, with its credited variants
    counts: dict[str, Any]   # orphans, fallbacks, duplicate orders, unassigned purchases


def compute_kpis(frame: pl.DataFrame, params: ExperimentParams | Any) -> KpiTables:
    """All KPI tables of experiment ``params.name`` from the event frame (EVENT_SCHEMA)."""
    params = experiment_params(params)
    events = experiment_events(frame, params)
    sales = attribute_sales(events, params.attribution_window_days)
    return KpiTables(
        variants=variant_kpis(events, sales, params),
        daily=daily_kpis(events, sales, params),
        units=unit_kpis(events, sales),
        unit_days=unit_kpis(events, sales, by_day=True),
        sales=sales,
        counts=feedback_counts(events, params),
    )


def experiment_events(frame: pl.DataFrame, params: ExperimentParams) -> pl.DataFrame:
    """The experiment's rows, checked: columns and dtypes, only known variants, every
    non-orphan impression and click labelled with its variant.

    Raises :class:`DataError` naming the column, or the variant and the row (``seq``), at fault.
    """
    for name, dtype in REQUIRED_COLUMNS.items():
        if name not in frame.columns:
            raise DataError("event frame lacks a column of EVENT_SCHEMA", column=name)
        if frame.schema[name] != dtype:
            raise DataError(f"event column has dtype {frame.schema[name]}, expected {dtype}",
                            column=name)
    events = frame.filter(pl.col("experiment") == params.name)
    if events.is_empty():
        raise DataError(f"the event log holds no events of experiment {params.name!r}",
                        hint="check the experiment name in the TOML against the log")
    known = set(params.arms) | {HOLDOUT}
    bad = events.filter(pl.col("variant").is_not_null() & ~pl.col("variant").is_in(list(known)))
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise DataError(f"unknown variant {row['variant']!r} in the log (known: {sorted(known)})",
                        column="variant", row=row["seq"],
                        hint="the log was written with another experiment config")
    unlabeled = events.filter(pl.col("kind").is_in(_FEEDBACK) & ~pl.col("orphan")
                              & pl.col("variant").is_null())
    if not unlabeled.is_empty():
        row = unlabeled.row(0, named=True)
        raise DataError(f"{row['kind']} row is not orphan but has no variant",
                        column="variant", row=row["seq"])
    return events


def _first_orders(events: pl.DataFrame) -> pl.DataFrame:
    """Purchase rows, an ``order_id`` seen twice kept once (its first row by ``seq``)."""
    purchases = events.filter(pl.col("kind") == "purchase").sort("seq")
    keyed = purchases.filter(pl.col("order_id").is_not_null()).unique("order_id", keep="first")
    return pl.concat([keyed, purchases.filter(pl.col("order_id").is_null())]).sort("seq")


def purchase_lines(events: pl.DataFrame) -> pl.DataFrame:
    """One row per purchased product: ``line`` (row number), ``order_seq``, ``order_id``,
    ``unit_id``, ``session_id``, ``purchase_variant``, ``product_id``, ``price`` (null if
    unknown), ``ts``, ``day``."""
    orders = _first_orders(events)
    mismatch = orders.filter(pl.col("prices").is_not_null()
                             & (pl.col("prices").list.len() != pl.col("product_ids").list.len()))
    if not mismatch.is_empty():
        raise DataError("purchase has a different number of prices than of product_ids",
                        column="prices", row=mismatch["seq"][0])
    lines = (
        orders.with_columns(idx=pl.int_ranges(pl.col("product_ids").list.len()))
        .explode(["product_ids", "idx"])
        .filter(pl.col("product_ids").is_not_null())
        .select(
            order_seq=pl.col("seq"),
            order_id=pl.col("order_id"),
            unit_id=pl.col("unit_id"),
            session_id=pl.col("session_id"),
            purchase_variant=pl.col("variant"),
            product_id=pl.col("product_ids"),
            price=pl.col("prices").list.get(pl.col("idx"), null_on_oob=True),
            ts=pl.col("ts"),
            day=pl.col("ts").dt.date(),
        )
    )
    return lines.with_row_index("line").with_columns(pl.col("line").cast(pl.Int64))


def _clicks(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter((pl.col("kind") == "click") & ~pl.col("orphan")).select(
        click_seq=pl.col("seq"),
        click_variant=pl.col("variant"),
        unit_id=pl.col("unit_id"),
        session_id=pl.col("session_id"),
        product_id=pl.col("product_ids").list.first(),
        click_ts=pl.col("ts"),
    )


def _latest_click(candidates: pl.DataFrame, prefix: str) -> pl.DataFrame:
    latest = candidates.sort(["line", "click_ts", "click_seq"]).group_by("line").last()
    return latest.select("line", pl.col("click_variant").alias(prefix),
                         pl.col("click_ts").alias(f"{prefix}_click_ts"))


def attribute_sales(events: pl.DataFrame, window_days: float = 14.0) -> pl.DataFrame:
    """:func:`purchase_lines` plus the variant each rule credits (null: not credited).

    ``variant`` / ``variant_click_ts``: the 14-day click rule (``window_days``);
    ``session_variant`` / ``session_variant_click_ts``: the same-session rule.
    """
    lines = purchase_lines(events)
    clicks = _clicks(events)
    window = timedelta(days=window_days)
    by_product = lines.select("line", "unit_id", "product_id", "ts").join(
        clicks.drop("session_id"), on=["unit_id", "product_id"], how="inner"
    ).filter((pl.col("click_ts") > pl.col("ts") - window) & (pl.col("click_ts") <= pl.col("ts")))
    by_session = lines.select("line", "session_id", "ts").join(
        clicks.select("click_seq", "click_variant", "session_id", "click_ts"),
        on="session_id", how="inner",
    ).filter(pl.col("click_ts") <= pl.col("ts"))
    return (
        lines.join(_latest_click(by_product, "variant"), on="line", how="left")
        .join(_latest_click(by_session, "session_variant"), on="line", how="left")
        .sort("line")
    )


def _count(events: pl.DataFrame, kind: str, keys: list[str], name: str) -> pl.DataFrame:
    rows = events.filter((pl.col("kind") == kind) & ~pl.col("orphan"))
    return rows.group_by(keys).agg(pl.len().cast(pl.Int64).alias(name))


def _credited(sales: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Credited sales and revenue per ``keys`` (``variant`` = the 14-day rule's variant)."""
    credited = sales.filter(pl.col("variant").is_not_null()).group_by(keys).agg(
        sales=pl.len().cast(pl.Int64),
        attributed_revenue=pl.col("price").sum(),
        priced_sales=pl.col("price").is_not_null().sum().cast(pl.Int64),
    )
    session_keys = ["session_variant" if k == "variant" else k for k in keys]
    naive = (sales.filter(pl.col("session_variant").is_not_null()).group_by(session_keys)
             .agg(same_session_sales=pl.len().cast(pl.Int64))
             .rename({"session_variant": "variant"}))
    return _merge([credited, naive], keys)


def _merge(tables: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    out = tables[0]
    for t in tables[1:]:
        out = out.join(t, on=keys, how="full", coalesce=True)
    return out


def _with_rates(table: pl.DataFrame, has_prices: bool) -> pl.DataFrame:
    imp = pl.when(pl.col("impressions") > 0).then(pl.col("impressions").cast(pl.Float64))
    rates = table.with_columns(
        ctr=pl.col("clicks") / imp,
        conversion=pl.col("sales") / imp,
        same_session_conversion=pl.col("same_session_sales") / imp,
        revenue_per_impression=(pl.col("attributed_revenue") / imp) if has_prices
        else pl.lit(None, pl.Float64),
    )
    return rates


_COUNT_COLUMNS = ("recommendations", "fallbacks", "impressions", "clicks", "sales", "priced_sales",
                  "same_session_sales", "orders", "purchased_items")


def _fill_counts(table: pl.DataFrame) -> pl.DataFrame:
    ints = (*_COUNT_COLUMNS, "units", "units_with_impressions")
    present = [c for c in ints if c in table.columns]
    floats = [c for c in ("attributed_revenue", "revenue") if c in table.columns]
    return table.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) for c in present]
                              + [pl.col(c).fill_null(0.0) for c in floats])


def _has_prices(events: pl.DataFrame) -> bool:
    purchases = events.filter(pl.col("kind") == "purchase")
    return bool(purchases["prices"].list.drop_nulls().list.len().fill_null(0).sum() > 0)


def _units(events: pl.DataFrame) -> pl.DataFrame:
    """Distinct (variant, unit_id) pairs: assignment rows, or any non-orphan row without them."""
    assigned = events.filter(pl.col("kind") == "assignment")
    source = assigned if not assigned.is_empty() else events.filter(~pl.col("orphan"))
    return source.filter(pl.col("variant").is_not_null() & pl.col("unit_id").is_not_null()).select(
        "variant", "unit_id").unique()


def variant_kpis(events: pl.DataFrame, sales: pl.DataFrame,
                 params: ExperimentParams) -> pl.DataFrame:
    """One row per arm (config order, holdout last): counts, CTR, conversion (14-day and
    same-session), credited revenue per impression, and orders / revenue per assigned unit."""
    keys = ["variant"]
    recs = events.filter(pl.col("kind") == "recommendation").group_by(keys).agg(
        recommendations=pl.len().cast(pl.Int64),
        fallbacks=pl.col("fallback").sum().cast(pl.Int64),
    )
    units = _units(events).group_by(keys).agg(units=pl.len().cast(pl.Int64))
    seen = (events.filter((pl.col("kind") == "impression") & ~pl.col("orphan"))
            .group_by(keys).agg(units_with_impressions=pl.col("unit_id").n_unique().cast(pl.Int64)))
    orders = sales.group_by("purchase_variant").agg(
        orders=pl.col("order_seq").n_unique().cast(pl.Int64),
        purchased_items=pl.len().cast(pl.Int64),
        revenue=pl.col("price").sum(),
    ).rename({"purchase_variant": "variant"})
    arms = pl.DataFrame({"variant": list(params.arms)}, schema={"variant": pl.Utf8})
    table = _merge([arms, units, recs, seen,
                    _count(events, "impression", keys, "impressions"),
                    _count(events, "click", keys, "clicks"),
                    _credited(sales, keys), orders], keys)
    table = _fill_counts(table.filter(pl.col("variant").is_not_null()))
    order = {v: i for i, v in enumerate(params.arms)}
    table = table.with_columns(_order=pl.col("variant").replace_strict(order, default=len(order)))
    table = _with_rates(table.sort("_order").drop("_order"), _has_prices(events))
    per_unit = pl.when(pl.col("units") > 0).then(pl.col("units").cast(pl.Float64))
    return table.with_columns(orders_per_unit=pl.col("orders") / per_unit,
                              revenue_per_unit=pl.col("revenue") / per_unit)


def daily_kpis(events: pl.DataFrame, sales: pl.DataFrame,
               params: ExperimentParams) -> pl.DataFrame:
    """One row per arm x UTC day: impressions, clicks, credited sales (by purchase day), the
    same-session sales, credited revenue, and their rates. Sorted by variant order, then day."""
    keys = ["variant", "day"]
    dated = events.with_columns(day=pl.col("ts").dt.date())
    table = _merge([_count(dated, "impression", keys, "impressions"),
                    _count(dated, "click", keys, "clicks"),
                    _credited(sales, keys)], keys)
    table = _fill_counts(table.filter(pl.col("variant").is_not_null()))
    order = {v: i for i, v in enumerate(params.arms)}
    table = table.with_columns(_order=pl.col("variant").replace_strict(order, default=len(order)))
    return _with_rates(table.sort(["_order", "day"]).drop("_order"), _has_prices(events))


def unit_kpis(events: pl.DataFrame, sales: pl.DataFrame, by_day: bool = False) -> pl.DataFrame:
    """One row per (variant, unit_id) — and UTC ``day`` with ``by_day`` — : ``impressions``,
    ``clicks``, credited ``sales`` and ``attributed_revenue`` (14-day rule, by the click's
    unit and variant, on the purchase's day), ``same_session_sales``, and the unit's
    ``orders`` and ``revenue`` (all its purchases).

    Without ``by_day``, units of the assignment rows with no other event appear with zeros.
    """
    keys = ["variant", "unit_id", *(["day"] if by_day else [])]
    dated = events.with_columns(day=pl.col("ts").dt.date())
    credited = (sales.filter(pl.col("variant").is_not_null())
                .group_by(keys).agg(sales=pl.len().cast(pl.Int64),
                                    attributed_revenue=pl.col("price").sum()))
    session_keys = ["session_variant" if k == "variant" else k for k in keys]
    naive = (sales.filter(pl.col("session_variant").is_not_null())
             .group_by(session_keys).agg(same_session_sales=pl.len().cast(pl.Int64))
             .rename({"session_variant": "variant"}))
    purchase_keys = ["purchase_variant" if k == "variant" else k for k in keys]
    orders = (sales.group_by(purchase_keys)
              .agg(orders=pl.col("order_seq").n_unique().cast(pl.Int64),
                   revenue=pl.col("price").sum())
              .rename({"purchase_variant": "variant"}))
    tables = [_count(dated, "impression", keys, "impressions"),
              _count(dated, "click", keys, "clicks"), credited, naive, orders]
    if not by_day:
        tables.insert(0, _units(events))
    table = _merge(tables, keys)
    table = table.filter(pl.col("variant").is_not_null() & pl.col("unit_id").is_not_null())
    return _fill_counts(table).select(
        *keys, "impressions", "clicks", "sales", "attributed_revenue", "same_session_sales",
        "orders", "revenue",
    ).sort(keys)


def feedback_counts(events: pl.DataFrame, params: ExperimentParams) -> dict[str, Any]:
    """Orphan feedback by kind and cause, fallbacks per variant, and purchases left out.

    Returns ``{"orphans": {kind: {"unknown": n, "expired": n}}, "fallbacks": {variant: n},
    "duplicate_orders": n, "unassigned_purchases": n}``.
    """
    known_ids = events.filter(pl.col("kind") == "recommendation")["recommendation_id"].drop_nulls()
    orphans = events.filter(pl.col("orphan")).with_columns(
        cause=pl.when(pl.col("recommendation_id").is_in(known_ids.implode()))
        .then(pl.lit("expired")).otherwise(pl.lit("unknown")))
    by_kind: dict[str, dict[str, int]] = {k: {"unknown": 0, "expired": 0} for k in _FEEDBACK}
    for kind, cause, n in orphans.group_by(["kind", "cause"]).len().iter_rows():
        by_kind.setdefault(kind, {"unknown": 0, "expired": 0})[cause] = int(n)
    recs = events.filter(pl.col("kind") == "recommendation")
    fallbacks = {v: 0 for v in params.variant_names}
    for variant, n in recs.group_by("variant").agg(pl.col("fallback").sum()).iter_rows():
        if variant is not None:
            fallbacks[variant] = int(n)
    purchases = events.filter(pl.col("kind") == "purchase")
    keyed = purchases["order_id"].drop_nulls()
    return {
        "orphans": by_kind,
        "orphan_total": int(orphans.height),
        "fallbacks": fallbacks,
        "duplicate_orders": int(len(keyed) - keyed.n_unique()),
        "unassigned_purchases": int(purchases["variant"].null_count()),
    }
