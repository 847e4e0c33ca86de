"""A synthetic experiment event log of any size, built with NumPy/Polars (no live API).

For the console's dashboard tests, screenshots and its 1M-event benchmark: units are assigned
by :func:`~sessionrec.experiments.assignment.assign` (so the sample-ratio check sees the
configured split), each unit gets one session a day on some of ``days`` days; a session has a
recommendation and 1..5 impressions; each impression is clicked with the variant's CTR and a
click is followed by a purchase of the clicked product (plus one more, prices 10 and 3) with
probability ``buy_rate``. The frame has :data:`~sessionrec.experiments.eventlog.EVENT_SCHEMA`
(``seq`` 1..n, in time order); :func:`write_log` appends it to an event log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import polars as pl

from sessionrec.experiments.assignment import assign
from sessionrec.experiments.eventlog import EVENT_SCHEMA, Event, EventLog

START = datetime(2026, 1, 5, tzinfo=UTC)


def _assignments(config, n_units: int) -> tuple[np.ndarray, np.ndarray]:
    units = np.asarray([f"user:u{i}" for i in range(n_units)], dtype=object)
    variants = np.asarray([assign(config, u) for u in units], dtype=object)
    return units, variants


def synthetic_events(config, n_units: int, days: int = 14, ctr: Mapping[str, float] | None = None,
                     buy_rate: float = 0.3, active_share: float = 0.5,
                     seed: int = 0) -> pl.DataFrame:
    """An event frame of experiment ``config`` (an ``ExperimentConfig``).

    ``ctr``: click probability per impression per variant (default 0.05 each); a unit is
    active on each day with probability ``active_share``.
    """
    rng = np.random.default_rng(seed)
    rates = {v.name: 0.05 for v in config.variants}
    rates.update(ctr or {})
    units, variants = _assignments(config, n_units)
    served = variants != "holdout"
    # sessions: (unit, day) pairs
    active = rng.random((n_units, days)) < active_share
    s_unit, s_day = np.nonzero(active & served[:, None])
    n_sessions = len(s_unit)
    s_start = (s_day * 86400 + rng.integers(0, 80000, n_sessions)).astype(np.int64)
    s_imps = rng.integers(1, 6, n_sessions)
    # impressions
    i_session = np.repeat(np.arange(n_sessions), s_imps)
    i_offset = np.concatenate([np.arange(k) for k in s_imps]) if n_sessions else np.zeros(0, int)
    i_ts = s_start[i_session] + 10 * (i_offset + 1)
    ctr_of = np.asarray([rates[v] for v in variants[s_unit]]) if n_sessions else np.zeros(0)
    clicked = rng.random(len(i_session)) < ctr_of[i_session]
    c_session, c_ts = i_session[clicked], i_ts[clicked] + 5
    c_product = rng.integers(0, 500, len(c_session))
    bought = rng.random(len(c_session)) < buy_rate
    p_session, p_ts, p_product = c_session[bought], c_ts[bought] + 600, c_product[bought]

    def block(kind: str, session: np.ndarray, ts: np.ndarray, products: list,
              prices=None, orders=None) -> pl.DataFrame:
        unit = units[s_unit[session]]
        sid = np.char.add("s", session.astype(str))
        rid = None if kind == "purchase" else np.char.add("r", session.astype(str))
        n = len(session)
        return pl.DataFrame({
            "kind": [kind] * n,
            "idempotency_key": [f"{kind}:{i}" for i in range(n)],
            "variant": variants[s_unit[session]].tolist(),
            "unit_id": unit.tolist(),
            "user_id": [u.split(":", 1)[1] for u in unit],
            "session_id": sid.tolist(),
            "recommendation_id": None if rid is None else rid.tolist(),
            "product_ids": products,
            "prices": prices,
            "order_id": orders,
            "ts_s": ts,
        }, schema_overrides={"recommendation_id": pl.Utf8, "prices": pl.List(pl.Float64),
                             "order_id": pl.Utf8, "product_ids": pl.List(pl.Utf8)})

    sessions = np.arange(n_sessions)
    first_day = np.full(n_units, -1)
    first_day[s_unit[::-1]] = s_start[::-1]  # each unit's first session start
    a_units = np.flatnonzero(first_day >= 0)
    assignment = pl.DataFrame({
        "kind": ["assignment"] * len(a_units),
        "idempotency_key": [f"assignment:{u}" for u in units[a_units]],
        "variant": variants[a_units].tolist(), "unit_id": units[a_units].tolist(),
        "user_id": [u.split(":", 1)[1] for u in units[a_units]],
        "session_id": None, "recommendation_id": None, "product_ids": [[]] * len(a_units),
        "prices": None, "order_id": None, "ts_s": first_day[a_units] - 1,
    }, schema_overrides={"session_id": pl.Utf8, "recommendation_id": pl.Utf8,
                         "prices": pl.List(pl.Float64), "order_id": pl.Utf8,
                         "product_ids": pl.List(pl.Utf8)})
    frames = [
        assignment,
        block("recommendation", sessions, s_start, [["p1", "p2", "p3"]] * n_sessions),
        block("impression", i_session, i_ts, [["p1", "p2", "p3"]] * len(i_session)),
        block("click", c_session, c_ts, [[f"p{p}"] for p in c_product]),
        block("purchase", p_session, p_ts, [[f"p{p}", "z"] for p in p_product],
              [[10.0, 3.0]] * len(p_session), [f"o{i}" for i in range(len(p_session))]),
    ]
    frame = pl.concat(frames, how="vertical_relaxed")
    ts = pl.from_epoch(pl.col("ts_s") + int(START.timestamp()), time_unit="s")
    frame = (frame.with_columns(ts=ts.dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
             .sort("ts", maintain_order=True)
             .with_columns(seq=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
                           experiment=pl.lit(config.name),
                           received_at=pl.col("ts"), orphan=pl.lit(False),
                           fallback=pl.lit(False),
                           placement=pl.when(pl.col("kind") == "recommendation")
                           .then(pl.lit("product_page")),
                           model=pl.lit(None, pl.Utf8)))
    return frame.select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()])


def write_log(log: EventLog, frame: pl.DataFrame, batch: int = 20_000) -> int:
    """Append the frame's rows to ``log`` (in batches); returns how many were new."""
    fields = [f for f in EVENT_SCHEMA if f != "seq"]
    new = 0
    for chunk in frame.select(fields).iter_slices(batch):
        events = []
        for row in chunk.iter_rows(named=True):
            row["product_ids"] = tuple(row["product_ids"] or ())
            row["prices"] = None if row["prices"] is None else tuple(row["prices"])
            events.append(Event(**row))
        new += log.append(events)
    return new

