"""Simulated visitors: the held-out part of a real click log, with its purchases.

The replay simulator (:mod:`sessionrec.experiments.simulate`) sends each visitor's views and
orders to the live API in time order. Visitors come from the events *after* the training data
of the served models, so no model has seen what it is asked about:

* :func:`read_timeline` reads a source's raw views and purchases and cleans and sessionizes them
  the way the models' prepared data was (fill users, drop bots, anonymous events in
  user-aware runs, given sessions or an inactivity gap), keeping every event type the replay
  needs (views and purchases), whatever the prepared data kept;
* :func:`training_cutoff` is the last event time of the prepared data's train and valid splits
  (the models saw nothing later);
* :func:`held_out` keeps the events strictly after the cut-off, up to ``days`` later, and
  refuses to return anything at or before it (the leakage guard);
* :func:`build_visitors` groups them into visitors: a user id where there is one, else the
  session; views in time order, orders (one per order id, with their products and prices) at
  their real times.

Purchases per source: Diginetica's ``train-purchases`` (:func:`diginetica.read_purchases`),
Taobao's ``buy`` and REES46's ``purchase`` events, the synthetic Galaxus-format data's
``orders.parquet`` (``sessionrec.data.synth.generate(..., orders=True)``). Sources without an
order id get one per (raw session, purchase time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from sessionrec.data import clean as cleaning
from sessionrec.data.schema import TS_DTYPE
from sessionrec.data.sessionize import sessionize
from sessionrec.data.sources.base import Source
from sessionrec.errors import DataError, EmptyDataError

log = logging.getLogger(__name__)

VIEW, PURCHASE = "view", "purchase"
ORDERS_FILE = "orders.parquet"  # beside a synthetic Galaxus-format log (synth.generate)

# The replay timeline: canonical events plus what the replay needs.
TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "session_id": pl.Int64(),     # dense, from sessionize
    "user_id": pl.String(),       # null: anonymous
    "item_id": pl.String(),       # the shop's ProductId as text (see View.product_id)
    "ts": TS_DTYPE,
    "kind": pl.String(),          # "view" | "purchase"
    "order_id": pl.String(),      # purchases
    "price": pl.Float64(),        # purchases, where known
}


@dataclass(frozen=True)
class View:
    """A product page view: the API answers it with recommendations."""

    session_id: str
    product_id: int | str  # an integer when the shop's id is one (sent as a JSON number)
    ts: float  # Unix seconds


@dataclass(frozen=True)
class Order:
    """One order: several products bought together."""

    order_id: str
    session_id: str
    product_ids: tuple[int | str, ...]
    prices: tuple[float, ...] | None  # one per product, or None when any is unknown
    ts: float


@dataclass(frozen=True)
class Visitor:
    """One visitor's held-out views and orders (each in time order)."""

    visitor_id: str
    user_id: str | None
    views: tuple[View, ...]
    orders: tuple[Order, ...] = ()

    @property
    def first_ts(self) -> float:
        return min([v.ts for v in self.views[:1]] + [o.ts for o in self.orders[:1]])

    def steps(self) -> list[tuple[int, View | Order]]:
        """Views and orders merged in time order as ``(index, step)``; ``index`` is the view's
        position in ``views`` (orders: -1). At equal times views come first."""
        merged = [(v.ts, 0, i, v) for i, v in enumerate(self.views)]
        merged += [(o.ts, 1, j, o) for j, o in enumerate(self.orders)]
        merged.sort(key=lambda m: m[:3])
        return [(i if kind == 0 else -1, step) for _, kind, i, step in merged]

    @functools.cached_property
    def _positions(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, v in enumerate(self.views):
            out.setdefault(str(v.product_id), []).append(i)
        return out

    def views_later(self, index: int, product_id: int | str,
                    horizon_s: float | None = None) -> bool:
        """Whether the visitor views ``product_id`` after view ``index`` (in this session or a
        later one), within ``horizon_s`` seconds of it if given."""
        positions = self._positions.get(str(product_id))
        if not positions:
            return False
        k = bisect_right(positions, index)
        if k == len(positions):
            return False
        return horizon_s is None or self.views[positions[k]].ts - self.views[index].ts <= horizon_s


# -- reading ------------------------------------------------------------------------------------
def _with_kind(lf: pl.LazyFrame) -> pl.LazyFrame:
    """``kind`` from ``event_type`` (a missing type is a view); other types are dropped."""
    schema = lf.collect_schema()
    kind = pl.col("event_type") if "event_type" in schema else pl.lit(VIEW)
    lf = lf.with_columns(kind=kind.fill_null(VIEW))
    return lf.filter(pl.col("kind").is_in([VIEW, PURCHASE]))


def _generic_order_ids(lf: pl.LazyFrame) -> pl.LazyFrame:
    """One order per raw session and purchase time (sources that have no order ids)."""
    order = pl.concat_str([pl.col("session_id").cast(pl.String), pl.lit("-"),
                           pl.col("ts").dt.epoch("ms").cast(pl.String)])
    return lf.with_columns(
        order_id=pl.when(pl.col("kind") == PURCHASE).then(order).otherwise(None))


def _diginetica(path: Path) -> pl.LazyFrame:
    from sessionrec.data.sources import diginetica

    views = diginetica.read_events(path)
    purchases = diginetica.read_purchases(path)
    return pl.concat([views, purchases], how="diagonal_relaxed")


def _galaxus(path: Path) -> pl.LazyFrame:
    from sessionrec.data.sources import galaxus

    views = galaxus.read_events(path).with_columns(kind=pl.lit(VIEW))
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    orders_file = next((p for p in (folder / ORDERS_FILE, folder.parent / ORDERS_FILE)
                        if p.is_file()), None)
    if orders_file is None:
        log.warning("no %s beside %s: the replay has no purchases", ORDERS_FILE, path)
        return views
    orders = pl.scan_parquet(orders_file)
    missing = {"OrderId", "UserId", "SessionId", "ProductId", "Timestamp"} - set(
        orders.collect_schema())
    if missing:
        raise DataError(f"orders table lacks column(s) {sorted(missing)}", path=str(orders_file))
    schema = views.collect_schema()
    lines = orders.select(
        item_id=pl.col("ProductId").cast(schema["item_id"]),
        last_logged_in_user_id=pl.col("UserId").cast(schema["last_logged_in_user_id"]),
        user_id=pl.col("UserId").cast(schema["user_id"]),
        session_id=pl.col("SessionId").cast(schema["session_id"]),
        user_agent=pl.lit(None, dtype=pl.String),
        ts=pl.col("Timestamp").cast(TS_DTYPE),
        kind=pl.lit(PURCHASE),
        order_id=pl.col("OrderId").cast(pl.String),
        price=(pl.col("Price").cast(pl.Float64) if "Price" in orders.collect_schema()
               else pl.lit(None, dtype=pl.Float64)),
    )
    return pl.concat([views, lines], how="diagonal_relaxed")


def raw_events(source: Source, path: Path) -> pl.LazyFrame:
    """A source's views and purchases: canonical columns plus ``kind`` and ``order_id``."""
    if source.name == "diginetica":
        lf = _with_kind(_diginetica(path))
    elif source.name == "galaxus":
        lf = _galaxus(path)
    else:
        lf = _with_kind(source.read(Path(path)))
    schema = lf.collect_schema()
    if "order_id" not in schema:
        lf = _generic_order_ids(lf)
    if "price" not in schema:
        lf = lf.with_columns(price=pl.lit(None, dtype=pl.Float64))
    return lf


def read_timeline(source: Source, path: Path, *, user_aware: bool, session_method: str,
                  gap_minutes: float = 30.0, drop_bots: bool = True) -> pl.DataFrame:
    """Cleaned, sessionized views and purchases of a source (:data:`TIMELINE_SCHEMA`).

    The cleaning and session options are those the models' data was prepared with (see
    :func:`prepared_options`); immediate repeats are kept (a shop sees every page view).
    """
    lf = cleaning.fill_user_from_last_logged_in(raw_events(source, path))
    if drop_bots:
        lf = cleaning.drop_bots(lf, cleaning.bot_user_agents(lf))
    if user_aware:
        lf = cleaning.drop_anonymous(lf)
    df = lf.select("session_id", "user_id", "item_id", "ts", "kind", "order_id",
                   "price").collect()
    if df.height == 0:
        raise EmptyDataError(f"no views or purchases in {source.name!r} data", path=str(path))
    df = sessionize(df, method=session_method, gap_minutes=gap_minutes, user_aware=user_aware)
    return df.select(
        pl.col("session_id").cast(pl.Int64), pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String), "ts", "kind", pl.col("order_id").cast(pl.String),
        pl.col("price").cast(pl.Float64))


def prepared_options(prepared: Path) -> dict:
    """Source name, raw input and the resolved clean/sessionize options of a prepared
    directory (its ``manifest.json``), as keyword arguments for :func:`read_timeline`."""
    manifest_file = Path(prepared) / "manifest.json"
    if not manifest_file.is_file():
        raise DataError("not a prepared data directory (no manifest.json)", path=str(prepared),
                        hint="give the --out directory of `sessionrec prepare` the models were "
                             "trained on")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    cfg = manifest.get("config", {})
    return {
        "source": manifest["source"],
        "input": manifest.get("input", ""),
        "user_aware": bool(manifest["user_aware"]),
        "session_method": manifest["sessionize"],
        "gap_minutes": float(cfg.get("sessionize", {}).get("gap_minutes", 30.0)),
        "drop_bots": bool(cfg.get("clean", {}).get("drop_bots", True)),
        "split_method": manifest.get("split_method", ""),
    }


def training_cutoff(prepared: Path) -> datetime:
    """The last event time of the prepared data's train and valid splits: the models were
    fitted (and early-stopped) on nothing later."""
    frames = [Path(prepared) / f"{name}.parquet" for name in ("train", "valid")]
    latest = [pl.scan_parquet(f).select(pl.col("ts").max()).collect().item()
              for f in frames if f.is_file()]
    latest = [t for t in latest if t is not None]
    if not latest:
        raise DataError("the prepared data has no train events", path=str(prepared))
    return max(latest)


# -- held-out visitors --------------------------------------------------------------------------
def held_out(timeline: pl.DataFrame, cutoff: datetime, days: float | None) -> pl.DataFrame:
    """Events strictly after ``cutoff`` and at most ``days`` after it (None: all of them).

    Raises :class:`EmptyDataError` when nothing is left, which is what a prepared directory
    split per user (last session) rather than by time gives: its training data reaches the end
    of the log.
    """
    out = timeline.filter(pl.col("ts") > cutoff)
    if days is not None:
        out = out.filter(pl.col("ts") <= cutoff + timedelta(days=days))
    if out.filter(pl.col("kind") == VIEW).height == 0:
        raise EmptyDataError(
            f"no views after the training cut-off {cutoff.isoformat()}",
            hint="prepare the models' data with a time split that holds out the period to "
                 "simulate (e.g. --set split.method=time --set split.test_days=14 "
                 "--set split.valid=false) and train the variants on it")
    earliest = out["ts"].min()
    if earliest is None or earliest <= cutoff:  # the leakage guard: never replay seen events
        raise DataError(f"held-out event at {earliest} is not after the cut-off {cutoff}")
    return out


def _native(product_id: str):
    """Integer-looking ids go out as JSON numbers (as the shop sends them), others as text."""
    return int(product_id) if product_id.lstrip("-").isdigit() and len(product_id) < 16 \
        else product_id


def _unix(ts: datetime) -> float:
    return ts.replace(tzinfo=UTC).timestamp() if ts.tzinfo is None else ts.timestamp()


def build_visitors(events: pl.DataFrame) -> tuple[list[Visitor], dict[str, int]]:
    """Group held-out events (:data:`TIMELINE_SCHEMA`) into visitors.

    A visitor is a user id where the events have one (``u<user>``), else a session
    (``s<session>``). An order belongs to the visitor whose views share its session, else to
    the visitor of its user; an order of nobody with views is dropped (counted). Visitors are
    sorted by their first event, then id. Returns the visitors and counts (``visitors``,
    ``views``, ``orders``, ``order_lines``, ``dropped_orders``).
    """
    key = (pl.when(pl.col("user_id").is_not_null()).then(pl.lit("u") + pl.col("user_id"))
           .otherwise(pl.lit("s") + pl.col("session_id").cast(pl.String)))
    events = events.with_columns(visitor=key)
    views = events.filter(pl.col("kind") == VIEW).sort("visitor", "ts", "session_id",
                                                       maintain_order=True)
    session_visitor = views.select("session_id", "visitor").unique("session_id", keep="first")
    user_visitor = views.drop_nulls("user_id").select("user_id", "visitor").unique("user_id")
    purchases = events.filter(pl.col("kind") == PURCHASE)
    lines = (purchases.drop("visitor")
             .join(session_visitor, on="session_id", how="left")
             .join(user_visitor.rename({"visitor": "by_user"}), on="user_id", how="left")
             .with_columns(visitor=pl.coalesce("visitor", "by_user")).drop("by_user"))
    orders = (lines.group_by("visitor", "order_id", maintain_order=True)
              .agg(pl.col("session_id").first(), pl.col("ts").min(),
                   pl.col("item_id"), pl.col("price"))
              .sort("visitor", "ts", "order_id"))
    dropped = orders.filter(pl.col("visitor").is_null()).height
    orders = orders.drop_nulls("visitor")

    by_visitor: dict[str, list[Order]] = {}
    for row in orders.iter_rows(named=True):
        prices = None if any(p is None for p in row["price"]) else tuple(row["price"])
        by_visitor.setdefault(row["visitor"], []).append(Order(
            order_id=row["order_id"], session_id=str(row["session_id"]),
            product_ids=tuple(_native(p) for p in row["item_id"]), prices=prices,
            ts=_unix(row["ts"])))
    visitors = []
    grouped = views.group_by("visitor", maintain_order=True).agg(
        pl.col("user_id").drop_nulls().first(), pl.col("session_id"), pl.col("item_id"),
        pl.col("ts"))
    for row in grouped.iter_rows(named=True):
        seen = tuple(View(str(s), _native(p), _unix(t))
                     for s, p, t in zip(row["session_id"], row["item_id"], row["ts"],
                                        strict=True))
        visitors.append(Visitor(row["visitor"], row["user_id"], seen,
                                tuple(by_visitor.get(row["visitor"], ()))))
    visitors.sort(key=lambda v: (v.first_ts, v.visitor_id))
    counts = {"visitors": len(visitors), "views": views.height,
              "orders": orders.height, "order_lines": int(orders["item_id"].list.len().sum()
                                                          or 0),
              "dropped_orders": dropped}
    return visitors, counts


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def sample_visitors(visitors: list[Visitor], n: int, seed: int) -> list[Visitor]:
    """``n`` visitors spread over the whole period (those with the smallest seeded hash), in
    their original order; all of them when ``n`` is 0 or not smaller."""
    if n <= 0 or n >= len(visitors):
        return visitors
    keep = set(sorted(range(len(visitors)),
                      key=lambda i: stable_hash(f"{seed}:{visitors[i].visitor_id}"))[:n])
    return [v for i, v in enumerate(visitors) if i in keep]


def span_days(visitors: list[Visitor]) -> tuple[float, float, float]:
    """(first, last event in Unix seconds, days between them) of the visitors' steps."""
    times = [s.ts for v in visitors for _, s in v.steps()]
    if not times:
        return 0.0, 0.0, 0.0
    return min(times), max(times), (max(times) - min(times)) / 86_400


def span_text(days: float) -> str:
    """``"14.0 days"``, or hours for spans under two days."""
    return f"{days:.1f} days" if days >= 2 else f"{days * 24:.1f} hours"
