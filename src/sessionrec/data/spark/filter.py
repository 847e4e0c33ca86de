"""Split labels, the fixed-point support filters and the subsample on Spark DataFrames.

The same definitions as :mod:`sessionrec.data.split`, :mod:`sessionrec.data.filter` and
:mod:`sessionrec.data.subsample`. Events are the narrow table ``(_ev, session_id, item_id,
user_id)``; each pass is a few joins and group-bys, one aggregation action for the pass's
counts, and a local checkpoint that cuts the lineage. The subsample's random draws run on the
driver over *aggregates* (item popularity, the sorted list of eligible users), with the very
functions the Polars engine uses, so both engines draw the same products and users.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from sessionrec.data.filter import FilterPass
from sessionrec.data.split import TEST, TRAIN, VALID
from sessionrec.data.subsample import draw_units, weighted_sample_without_replacement
from sessionrec.errors import EmptyDataError

log = logging.getLogger(__name__)

DataFrame = Any
LabelRule = Callable[[DataFrame], DataFrame]  # alive events -> (session_id, label)


def _f() -> Any:
    from pyspark.sql import functions

    return functions


def last_session_rule(valid: bool) -> LabelRule:
    """Each user's last alive session is test, the one before valid, the rest train."""
    def rule(alive: DataFrame) -> DataFrame:
        F = _f()
        from pyspark.sql import Window

        sessions = alive.select("user_id", "session_id").distinct()
        w = Window.partitionBy("user_id").orderBy(F.col("session_id").desc())
        rn, cnt = F.row_number().over(w), F.count("*").over(Window.partitionBy("user_id"))
        label = F.when((rn == 1) & (cnt >= 2), TEST)
        if valid:
            label = label.when((rn == 2) & (cnt >= 3), VALID)
        return sessions.select("session_id", label.otherwise(TRAIN).cast("byte").alias("label"))
    return rule


def fixed_rule(labels: DataFrame) -> LabelRule:
    """Labels that do not depend on which sessions are alive (time and given splits)."""
    return lambda alive: labels


def session_labels(sessions: DataFrame, method: str, *, test_start: int | None = None,
                   valid_start: int | None = None, valid_days: float | None = None) -> DataFrame:
    """Fixed labels from ``sessions (session_id, _end µs[, _given])`` for time / given splits."""
    F = _f()
    if method == "time":
        label = F.when(F.col("_end") >= test_start, TEST)
        if valid_start is not None:
            label = label.when(F.col("_end") >= valid_start, VALID)
        return sessions.select("session_id", label.otherwise(TRAIN).cast("byte").alias("label"))
    given = F.when(F.col("_given") == "train", TRAIN).when(F.col("_given") == "valid", VALID)
    out = sessions.withColumn("label", given.otherwise(TEST).cast("byte"))
    if valid_days is not None:
        from sessionrec.data.split import US_PER_DAY

        top = out.where(F.col("label") == TRAIN).agg(F.max("_end")).first()[0]
        if top is not None:
            cut = top - int(valid_days * US_PER_DAY)
            out = out.withColumn("label", F.when((F.col("label") == TRAIN) & (F.col("_end") >= cut),
                                                 F.lit(VALID).cast("byte")).otherwise(F.col("label")))
    return out.select("session_id", "label")


def _counts(df: DataFrame, col: str, name: str) -> DataFrame:
    return df.groupBy(col).agg(_f().count("*").alias(name))


def filter_pass(alive: DataFrame, labels: DataFrame, *, min_item_support: int,
                min_session_length: int, min_user_sessions: int) -> DataFrame:
    """One pass: events flagged ``_train``, ``_k1`` (item support), ``_k2`` (session length),
    ``_k3`` (user sessions); the survivors are those with ``_k3``."""
    F = _f()
    e = alive.join(labels, "session_id").withColumn("_train", F.col("label") == TRAIN).drop(
        "label")
    support = _counts(e.where("_train"), "item_id", "_support")
    e = e.join(support, "item_id", "left").withColumn(
        "_k1", F.coalesce(F.col("_support"), F.lit(0)) >= min_item_support).drop("_support")
    length = _counts(e.where("_k1"), "session_id", "_len")
    e = e.join(length, "session_id", "left").withColumn(
        "_k2", F.col("_k1") & (F.coalesce(F.col("_len"), F.lit(0)) >= min_session_length)).drop(
        "_len")
    if min_user_sessions > 1:
        per_user = (e.where("_k2").select("user_id", "session_id").distinct()
                    .groupBy("user_id").agg(F.count("*").alias("_us")))
        e = e.join(per_user, "user_id", "left").withColumn(
            "_k3", F.col("_k2") & (F.coalesce(F.col("_us"), F.lit(0)) >= min_user_sessions)
        ).drop("_us")
    else:
        e = e.withColumn("_k3", F.col("_k2"))
    return e


def filter_until_stable(alive: DataFrame, rule: LabelRule, *, min_item_support: int,
                        min_session_length: int, min_user_sessions: int,
                        max_passes: int = 100) -> tuple[DataFrame, DataFrame, list[FilterPass]]:
    """Spark twin of :func:`sessionrec.data.filter.filter_until_stable`."""
    F = _f()
    alive = alive.localCheckpoint()
    n_in = alive.count()
    passes: list[FilterPass] = []
    for number in range(1, max_passes + 1):
        # Lazy checkpoints: each is computed once by the pass's one action, and cuts the
        # lineage so that pass 8 does not re-plan passes 1-7.
        labels = rule(alive).localCheckpoint(eager=False)
        e = filter_pass(alive, labels, min_item_support=min_item_support,
                        min_session_length=min_session_length,
                        min_user_sessions=min_user_sessions).localCheckpoint(eager=False)
        def n(cond: Any) -> Any:
            return F.sum(F.when(cond, 1).otherwise(0))
        k1, k2, k3, tr = F.col("_k1"), F.col("_k2"), F.col("_k3"), F.col("_train")
        row = e.agg(n(~k1 & tr), n(~k1 & ~tr), n(k1 & ~k2), n(k2 & ~k3), n(k3)).first()
        d_train, d_eval, by_len, by_user, n_out = (int(v or 0) for v in row)
        passes.append(FilterPass(number, n_in, d_train, d_eval, by_len, by_user, n_out))
        log.info("spark filter pass %d: %d -> %d events", number, n_in, n_out)
        if n_out == 0:
            raise EmptyDataError(
                f"filtering removed every event (min_item_support={min_item_support}, "
                f"min_session_length={min_session_length}, "
                f"min_user_sessions={min_user_sessions})",
                hint="lower the filter thresholds (--set filter.min_item_support=...) or use "
                     "more data")
        if n_out == n_in:
            return alive, labels, passes
        alive = e.where("_k3").select(*alive.columns).localCheckpoint(eager=False)
        n_in = n_out
    log.warning("filter did not reach a fixed point in %d passes", max_passes)
    return alive, rule(alive).localCheckpoint(), passes


def subsample(alive: DataFrame, labels: DataFrame, *, n_users: int | None, n_items: int | None,
              min_session_length: int, min_user_sessions: int, user_aware: bool,
              seed: int) -> DataFrame:
    """Spark twin of :func:`sessionrec.data.subsample.subsample` (same draws, same seed)."""
    F = _f()
    spark = alive.sparkSession
    rng = np.random.default_rng(seed)
    if n_items is not None:
        pop = (alive.join(labels.where(F.col("label") == TRAIN), "session_id")
               .groupBy("item_id").count().orderBy("item_id").collect())
        weights = np.array([r["count"] for r in pop], dtype=np.int64)
        chosen = weighted_sample_without_replacement(weights, n_items, rng)
        keep = spark.createDataFrame([(pop[int(i)]["item_id"],) for i in chosen],
                                     alive.select("item_id").schema)
        alive = alive.join(F.broadcast(keep), "item_id")
        e = filter_pass(alive, labels.select("session_id", F.lit(TRAIN).cast("byte")
                                             .alias("label")),
                        min_item_support=0, min_session_length=min_session_length,
                        min_user_sessions=min_user_sessions)
        alive = e.where("_k3").select(*alive.columns).localCheckpoint()
    if n_users is not None:
        unit = "user_id" if user_aware else "session_id"
        rows = alive.select(unit).distinct().orderBy(unit).collect()
        units = [r[0] for r in rows]
        if len(units) < n_users:
            log.warning("subsample: only %d users/sessions qualify, fewer than the %d asked for",
                        len(units), n_users)
        taken = draw_units(len(units), n_users, rng)
        keep = spark.createDataFrame([(units[int(i)],) for i in taken],
                                     alive.select(unit).schema)
        alive = alive.join(F.broadcast(keep), unit)
    return alive.localCheckpoint()
