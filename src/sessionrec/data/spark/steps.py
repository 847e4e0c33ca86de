"""Clean, sessionize and aggregate as Spark DataFrame operations (no UDFs, no collects).

Each function mirrors its Polars counterpart (:mod:`sessionrec.data.clean`,
:mod:`sessionrec.data.sessionize`, ``prepare.write_partitions``); ``_row`` is the event's
position in the input (files in name order, rows in file order), the tie-breaker that keeps
"equal keys keep their input order" identical on both engines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

DataFrame = Any  # pyspark.sql.DataFrame; pyspark is an optional import


def _f() -> Any:
    from pyspark.sql import functions

    return functions


def fill_user_from_last_logged_in(events: DataFrame) -> DataFrame:
    F = _f()
    if "last_logged_in_user_id" not in events.columns:
        return events
    user_type = events.schema["user_id"].dataType
    last = F.col("last_logged_in_user_id").cast(user_type)
    return events.withColumn("user_id", F.coalesce("user_id", last)).drop(
        "last_logged_in_user_id")


def bot_user_agents(events: DataFrame) -> DataFrame:
    """Distinct user agents matching a crawler pattern (a small one-column DataFrame).

    The distinct agents (an aggregate: a log has far fewer agents than events) are matched on
    the driver with the Polars engine's own function (Rust regex): Java's backtracking regex
    takes minutes on the 26k-character alternation of every crawler pattern, and one matcher
    for both engines cannot disagree on an exotic pattern.
    """
    import polars as pl

    from sessionrec.data.clean import bot_user_agents as polars_bots

    agents = [r[0] for r in events.select("user_agent").where(
        _f().col("user_agent").isNotNull()).distinct().collect()]
    bots = polars_bots(pl.LazyFrame({"user_agent": pl.Series(agents, dtype=pl.String)}))
    return events.sparkSession.createDataFrame([(a,) for a in bots.to_list()],
                                               "user_agent string")


def drop_bots(events: DataFrame, bots: DataFrame) -> DataFrame:
    F = _f()
    return events.join(F.broadcast(bots), "user_agent", "left_anti")


def keep_event_types(events: DataFrame, types: Sequence[str]) -> DataFrame:
    F = _f()
    if not types or "event_type" not in events.columns:
        return events
    return events.where(F.col("event_type").isin(list(types)))


def drop_anonymous(events: DataFrame) -> DataFrame:
    return events.where(_f().col("user_id").isNotNull())


def dense_index(df: DataFrame, order: Sequence[Any], name: str) -> DataFrame:
    """``df`` with ``name`` = 0, 1, 2, ... in ``order`` (a distributed row number).

    Sorting range-partitions the rows; ``monotonically_increasing_id`` then numbers them
    (partition << 33) + position, so only the per-partition row counts (one small row per
    partition) go to the driver to turn those ids into dense ones.
    """
    F = _f()
    sorted_df = df.orderBy(*order).withColumn("_pid", F.spark_partition_id()).withColumn(
        "_mid", F.monotonically_increasing_id())
    sorted_df = sorted_df.localCheckpoint()  # fix the numbering (ids are not deterministic
    # across recomputation otherwise)
    counts = sorted_df.groupBy("_pid").count().orderBy("_pid").collect()
    offsets, total = [], 0
    for row in counts:
        offsets.append((row["_pid"], total))
        total += row["count"]
    spark = df.sparkSession
    off = spark.createDataFrame(offsets or [(0, 0)], "_pid int, _off long")
    out = sorted_df.join(F.broadcast(off), "_pid").withColumn(
        name, F.col("_off") + F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33))
    return out.drop("_pid", "_mid", "_off")


def sessionize(events: DataFrame, *, method: str, gap_minutes: float,
               user_aware: bool) -> DataFrame:
    """Dense Int64 ``session_id`` as in :func:`sessionrec.data.sessionize.sessionize`.

    A session is (user,) given session id [, visit]; visits are cut where two consecutive
    events are more than ``gap_minutes`` apart. Sessions are numbered by (user,) start time,
    then (given id, visit) — the Polars engine's stable order of the sorted events.
    """
    F = _f()
    from pyspark.sql import Window

    if method not in ("given", "gap"):
        raise ValueError(f"unknown sessionize method {method!r}")
    key = ["user_id", "session_id"] if user_aware else ["session_id"]
    events = events.withColumnRenamed("session_id", "_given").withColumn(
        "_us", F.unix_micros("ts"))
    key = [k if k != "session_id" else "_given" for k in key]
    if method == "gap":
        w = Window.partitionBy(*key).orderBy("_us", "_row")
        gap_us = int(gap_minutes * 60 * 1_000_000)
        prev = F.lag("_us").over(w)
        new = F.when(prev.isNull() | (F.col("_us") - prev > gap_us), 1).otherwise(0)
        events = events.withColumn("_new", new).withColumn(
            "_visit", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0))).drop(
            "_new")
    else:
        events = events.withColumn("_visit", F.lit(0))
    skey = [*key, "_visit"]
    sessions = events.groupBy(*skey).agg(F.min("_us").alias("_start"))
    order = (["user_id"] if user_aware else []) + ["_start", "_given", "_visit"]
    sessions = dense_index(sessions, order, "session_id").drop("_start")
    out = events.join(sessions, skey).drop("_given", "_visit", "_us")
    return out


def drop_immediate_repeats(events: DataFrame) -> DataFrame:
    F = _f()
    from pyspark.sql import Window

    w = Window.partitionBy("session_id").orderBy("ts", "_row")
    keep = F.coalesce(F.lag("item_id").over(w) != F.col("item_id"), F.lit(True))
    return events.withColumn("_keep", keep).where("_keep").drop("_keep")


def partition_key(events: DataFrame, n: int, user_aware: bool) -> DataFrame:
    """``_part`` = id % n for integer ids, (dense rank of the id) % n for text ids."""
    F = _f()
    col = "user_id" if user_aware else "session_id"
    dtype = events.schema[col].dataType.typeName()
    if dtype in ("long", "integer"):
        return events.withColumn("_part", F.pmod(F.col(col), F.lit(n)))
    ids = dense_index(events.select(col).distinct(), [col], "_rank")
    return events.join(ids, col).withColumn("_part", F.pmod(F.col("_rank"), F.lit(n))).drop(
        "_rank")
