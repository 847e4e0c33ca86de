"""Support filters applied until nothing changes (seed 000, 3.2), leak-free.

Conditions (each configurable): every item has at least ``min_item_support`` events *in the
training split*, every session at least ``min_session_length`` events, every user (in a
user-aware run) at least ``min_user_sessions`` sessions. Item support is counted on training
rows only, so nothing about valid/test events decides which items exist; valid/test events of
items that do not reach the support in train are removed, which also removes items never seen
in training. Split labels are recomputed on each pass, because removing a user's last session
makes another one the last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from sessionrec.data.split import Labeller
from sessionrec.errors import EmptyDataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilterPass:
    """Events removed by each condition in one pass (for logs and the manifest)."""

    number: int
    events_in: int
    item_support_train: int
    item_support_eval: int
    session_length: int
    user_sessions: int
    events_out: int


def filter_until_stable(
    df: pl.DataFrame,
    *,
    label: Labeller,
    min_item_support: int,
    min_session_length: int,
    min_user_sessions: int,
    user_aware: bool,
    max_passes: int = 100,
) -> tuple[pl.DataFrame, list[FilterPass]]:
    """Apply the support filters until a pass removes nothing; return data and per-pass counts.

    ``df`` holds canonical sessionized events; ``label`` sets its ``split`` column.
    Raises :class:`EmptyDataError` if nothing is left.
    """
    passes: list[FilterPass] = []
    for number in range(1, max_passes + 1):
        n_in = len(df)
        df = label(df)
        train_support = (
            df.lazy().filter(pl.col("split") == "train").group_by("item_id").len()
            .filter(pl.col("len") >= min_item_support).select("item_id").collect()
        )
        keep = pl.col("item_id").is_in(train_support["item_id"].implode())
        is_train = pl.col("split") == "train"
        dropped = df.select(
            train=(~keep & is_train).sum(), eval=(~keep & ~is_train).sum()
        ).row(0)
        df = df.filter(keep)
        n = len(df)
        df = df.filter(pl.len().over("session_id") >= min_session_length)
        by_length = n - len(df)
        by_user = 0
        if user_aware and min_user_sessions > 1:
            n = len(df)
            df = df.filter(pl.col("session_id").n_unique().over("user_id") >= min_user_sessions)
            by_user = n - len(df)
        step = FilterPass(number, n_in, dropped[0], dropped[1], by_length, by_user, len(df))
        passes.append(step)
        log.info("filter pass %d: %d -> %d events (item support: %d train + %d valid/test, "
                 "session length: %d, user sessions: %d)", number, n_in, len(df), dropped[0],
                 dropped[1], by_length, by_user)
        if len(df) == 0:
            raise EmptyDataError(
                "filtering removed every event (min_item_support="
                f"{min_item_support}, min_session_length={min_session_length}, "
                f"min_user_sessions={min_user_sessions})",
                hint="lower the filter thresholds (--set filter.min_item_support=...) or use "
                     "more data",
            )
        if len(df) == n_in:
            return df, passes  # unchanged, so this pass's labels are final
    log.warning("filter did not reach a fixed point in %d passes", max_passes)
    return label(df), passes
