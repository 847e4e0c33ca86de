"""Cleaning raw events (seed 000, section 3.2): fill users, drop bots, anonymous events, repeats.

Every function is a pure ``LazyFrame -> LazyFrame`` step on canonical events.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import polars as pl

log = logging.getLogger(__name__)


@functools.cache
def crawler_pattern() -> str:
    """One regular expression matching every crawler in the ``crawler-user-agents`` package.

    The package's patterns are case-sensitive regexes; they are joined into one alternation
    that Polars (Rust regex) evaluates vectorised.
    """
    import crawleruseragents

    data = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    return "|".join(f"(?:{entry['pattern']})" for entry in data)


def fill_user_from_last_logged_in(events: pl.LazyFrame) -> pl.LazyFrame:
    """Use ``last_logged_in_user_id`` where ``user_id`` is missing, then drop that column.

    The Galaxus log knows the user last logged in on the device even when the visitor did not
    log in this time (seed 000, 3.2); other sources lack the column and pass unchanged.
    """
    if "last_logged_in_user_id" not in events.collect_schema():
        return events
    user_type = events.collect_schema()["user_id"]
    last = pl.col("last_logged_in_user_id").cast(user_type)
    return events.with_columns(user_id=pl.coalesce("user_id", last)).drop(
        "last_logged_in_user_id")


def drop_anonymous(events: pl.LazyFrame) -> pl.LazyFrame:
    """Drop events without a user (needed when the run is user-aware)."""
    return events.filter(pl.col("user_id").is_not_null())


def bot_user_agents(events: pl.LazyFrame) -> pl.Series:
    """The distinct user agents in ``events`` that match a known crawler pattern.

    Matching runs on the distinct values only (a log has far fewer user agents than events),
    so the per-row work is a hash lookup in :func:`drop_bots`.
    """
    if "user_agent" not in events.collect_schema():
        return pl.Series("user_agent", [], dtype=pl.String)
    agents = events.select(pl.col("user_agent").drop_nulls().unique()).collect()["user_agent"]
    return bots_among(agents)


def agent_counts(events: pl.LazyFrame) -> tuple[int, pl.Series]:
    """(number of events, distinct non-null user agents) in one pass over ``events``.

    One scan yields both figures the clean step reports, so the log is read once for them.
    """
    if "user_agent" not in events.collect_schema():
        return int(events.select(pl.len()).collect(engine="streaming").item()), pl.Series(
            "user_agent", [], dtype=pl.String)
    agents = events.group_by("user_agent").agg(pl.len()).collect(engine="streaming")
    distinct = agents["user_agent"].drop_nulls()
    return int(agents["len"].sum()), distinct


def bots_among(agents: pl.Series) -> pl.Series:
    """The user agents of ``agents`` (distinct values) that match a known crawler pattern."""
    return agents.filter(agents.str.contains(crawler_pattern()))


def drop_bots(events: pl.LazyFrame, bots: pl.Series) -> pl.LazyFrame:
    """Drop events whose user agent is in ``bots`` (see :func:`bot_user_agents`)."""
    if "user_agent" not in events.collect_schema():
        return events
    return events.filter(~pl.col("user_agent").is_in(bots.implode()).fill_null(False))


def keep_event_types(events: pl.LazyFrame, types: Sequence[str]) -> pl.LazyFrame:
    """Keep only events whose ``event_type`` is in ``types`` (no-op for an empty list)."""
    if not types or "event_type" not in events.collect_schema():
        return events
    return events.filter(pl.col("event_type").is_in(list(types)))


def drop_immediate_repeats(events: pl.LazyFrame) -> pl.LazyFrame:
    """Drop an event when the previous event of the same session has the same item.

    Expects events sorted by session and time (as :func:`sessionize` leaves them).
    """
    same = (pl.col("item_id") == pl.col("item_id").shift(1)) & (
        pl.col("session_id") == pl.col("session_id").shift(1)
    )
    return events.filter(~same.fill_null(False))
