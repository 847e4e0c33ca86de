"""Cutting events into sessions: keep the given session ids or split by an inactivity gap."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from datetime import timedelta

import polars as pl


def key_changes(keys: Sequence[str]) -> pl.Expr:
    """True on a row whose key columns differ from the previous row's (and on the first row)."""
    flags = [pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys]
    return functools.reduce(operator.or_, flags)


def sessionize(events: pl.LazyFrame, *, method: str, gap_minutes: float,
               user_aware: bool) -> pl.LazyFrame:
    """Give every event a dense Int64 ``session_id`` and sort into canonical order.

    ``method="given"`` keeps the source's sessions; in a user-aware run a session is the pair
    (user, given session id), so an id shared by two users becomes two sessions.
    ``method="gap"`` also cuts a given session wherever two consecutive events are more than
    ``gap_minutes`` apart (sources without session ids pass one "session" per user, which this
    cuts into visits).

    The result is sorted by (user,) session start, session, time — ties in time keep the input
    order — and session ids count up in that order.
    """
    if method not in ("given", "gap"):
        raise ValueError(f"unknown sessionize method {method!r}")
    keys = ["user_id", "session_id"] if user_aware else ["session_id"]
    events = events.sort([*keys, "ts"], maintain_order=True)
    boundary = key_changes(keys)
    if method == "gap":
        boundary = boundary | (pl.col("ts").diff() > timedelta(minutes=gap_minutes)).fill_null(
            True)
    events = events.with_columns(_visit=boundary.cum_sum())
    events = events.with_columns(_start=pl.col("ts").min().over("_visit"))
    order = ["user_id", "_start", "_visit", "ts"] if user_aware else ["_start", "_visit", "ts"]
    events = events.sort(order, maintain_order=True)
    events = events.with_columns(
        session_id=(key_changes(["_visit"]).cum_sum() - 1).cast(pl.Int64)
    )
    return events.drop("_visit", "_start")
