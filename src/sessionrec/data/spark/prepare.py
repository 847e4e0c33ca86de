"""The Spark engine's run of the prepare steps, writing the Polars engine's layout.

Input: the source adapter reads and validates the raw files exactly as for the Polars engine
(so bad input raises the same :class:`DataError`), and streams the canonical events to a
staging Parquet file with their input position ``_row``. From there every step — clean,
sessionize, aggregate, filter, subsample, split, encode — is a Spark DataFrame operation.
Outputs are written by Spark and moved to the same file names the Polars engine writes
(``--out`` must be a path the driver can rename files in: local disk or a shared mount).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.data.schema import METADATA_COLUMNS, validate_schema
from sessionrec.data.spark import filter as sfilter
from sessionrec.data.spark import steps
from sessionrec.data.split import SPLIT_NAMES, time_cutoffs
from sessionrec.data.subsample import preset as get_preset
from sessionrec.errors import ConfigError, DataError, EmptyDataError

log = logging.getLogger(__name__)

DROPPED = ("_row", "user_agent", "last_logged_in_user_id")


def stage(source: Any, path: Path, staging: Path,
          counts: dict[str, int]) -> tuple[Path, Path | None]:
    """Validated canonical events (+ item metadata) as Parquet files Spark reads."""
    staging.mkdir()
    events = source.read(path)
    validate_schema(events.collect_schema(), f"source {source.name!r} at {path}")
    target = staging / "events.parquet"
    events.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)).sink_parquet(
        target)
    counts["raw_events"] = pl.scan_parquet(target).select(pl.len()).collect().item()
    if counts["raw_events"] == 0:
        raise EmptyDataError("the input has no events", path=str(path))
    items = source.read_items(path) if source.read_items else None
    if items is None:
        return target, None
    items_path = staging / "items.parquet"
    items.collect().with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)
                                                        ).write_parquet(items_path)
    return target, items_path


def move_single(spark_dir: Path, target: Path) -> None:
    """Move the one Parquet part Spark wrote into ``spark_dir`` to ``target``."""
    parts = sorted(spark_dir.glob("part-*.parquet"))
    if len(parts) != 1:
        raise DataError(f"expected one Parquet part from Spark, found {len(parts)}",
                        path=str(spark_dir), hint="this is a bug in the Spark engine")
    parts[0].rename(target)
    shutil.rmtree(spark_dir)


def write_one(df: Any, order: list[str], target: Path, scratch: Path,
              drop: tuple[str, ...] | list[str] = ()) -> None:
    """Write ``df`` sorted by ``order`` (then without ``drop``) as the single file ``target``."""
    out = scratch / target.name
    df.orderBy(*order).drop(*drop).coalesce(1).write.parquet(str(out))
    move_single(out, target)


def clean_and_sessionize(ev: Any, cfg: Any, res: Any, counts: dict[str, int]) -> Any:
    F = steps._f()
    columns = ev.columns  # the adapter's column order, which the partition files keep
    ev = steps.fill_user_from_last_logged_in(ev)
    if cfg.clean.drop_bots and "user_agent" in ev.columns:
        bots = steps.bot_user_agents(ev)
        counts["bot_user_agents"] = bots.count()
        ev = steps.drop_bots(ev, bots)
    elif cfg.clean.drop_bots:
        counts["bot_user_agents"] = 0
    ev = steps.keep_event_types(ev, cfg.clean.event_types)
    if res.user_aware:
        ev = steps.drop_anonymous(ev)
    ev = ev.drop(*[c for c in ("user_agent", "last_logged_in_user_id") if c in ev.columns])
    ev = steps.sessionize(ev, method=res.session_method, gap_minutes=cfg.sessionize.gap_minutes,
                          user_aware=res.user_aware)
    if cfg.clean.drop_repeats:
        ev = steps.drop_immediate_repeats(ev)
    ev = ev.withColumn("session_id", F.col("session_id").cast("long"))
    ev = ev.select(*[c for c in columns if c in ev.columns]).localCheckpoint()
    counts["clean_events"] = ev.count()
    return ev


def write_partitions(ev: Any, cols: list[str], directory: Path, scratch: Path, n: int,
                     user_aware: bool) -> None:
    parts = steps.partition_key(ev, n, user_aware)
    raw = scratch / "sessions"
    (parts.repartition(n, "_part").sortWithinPartitions("_part", "session_id", "ts", "_row")
     .select(*cols, "_part").write.partitionBy("_part").parquet(str(raw)))
    directory.mkdir()
    for sub in sorted(raw.glob("_part=*")):
        move_single(sub, directory / f"part-{int(sub.name.split('=')[1]):05d}.parquet")
    shutil.rmtree(raw)


def split_rule(ev: Any, cfg: Any, res: Any) -> sfilter.LabelRule:
    F = steps._f()
    s = cfg.split
    if res.split_method == "last_session":
        return sfilter.last_session_rule(s.valid)
    if res.split_method not in ("time", "given"):
        raise ConfigError(f"unknown split method {res.split_method!r}")
    aggs = [F.max(F.unix_micros("ts")).alias("_end")]
    if res.split_method == "given":
        if "split" not in ev.columns:
            raise ConfigError("split.method=given needs a source that ships its own split")
        aggs.append(F.min(F.struct("ts", "_row", "split"))["split"].alias("_given"))
    sessions = ev.groupBy("session_id").agg(*aggs).localCheckpoint()
    if res.split_method == "time":
        top = sessions.agg(F.max("_end")).first()[0]
        test_start, valid_start = time_cutoffs(int(top), s.test_days, s.valid_days, s.valid)
        labels = sfilter.session_labels(sessions, "time", test_start=test_start,
                                        valid_start=valid_start)
    else:
        bad = sessions.where(~F.col("_given").isin(list(SPLIT_NAMES))).select("_given").first()
        if bad is not None:
            raise DataError(f"unknown split label {bad[0]!r}", column="split")
        labels = sfilter.session_labels(sessions, "given",
                                        valid_days=s.valid_days if s.valid else None)
    return sfilter.fixed_rule(labels.localCheckpoint())


def filter_and_subsample(ev: Any, rule: Any, cfg: Any, res: Any,
                         counts: dict[str, int]) -> tuple[Any, Any, list]:
    f, sub = cfg.filter, cfg.subsample
    min_user = f.min_user_sessions if res.user_aware else 1
    alive = ev.select("_row", "session_id", "item_id", "user_id")
    alive, labels, passes = sfilter.filter_until_stable(
        alive, rule, min_item_support=f.min_item_support,
        min_session_length=f.min_session_length, min_user_sessions=min_user,
        max_passes=f.max_passes)
    counts["filtered_events"] = passes[-1].events_out
    target = get_preset(sub.preset) if sub.preset != "NONE" else None
    n_users = sub.users if sub.users is not None else (target.users if target else None)
    n_items = sub.items if sub.items is not None else (target.items if target else None)
    if n_users is None and n_items is None:
        return alive, labels, passes
    alive = sfilter.subsample(alive, labels, n_users=n_users, n_items=n_items,
                              min_session_length=f.min_session_length,
                              min_user_sessions=min_user, user_aware=res.user_aware,
                              seed=sub.seed)
    if alive.isEmpty():
        raise EmptyDataError("subsampling left no events", hint="ask for more items or users")
    alive, labels, more = sfilter.filter_until_stable(
        alive, rule, min_item_support=sub.min_item_support,
        min_session_length=f.min_session_length, min_user_sessions=min_user,
        max_passes=f.max_passes)
    counts["subsampled_events"] = more[-1].events_out
    return alive, labels, passes + more


def item_metadata(spark: Any, ev: Any, items_path: Path | None) -> Any | None:
    """First metadata row per item (items file), or first non-null value per column (events)."""
    F = steps._f()
    if items_path is not None:
        items = spark.read.parquet(str(items_path))
        cols = [c for c in items.columns if c not in ("_row", "item_id")]
        if not cols:
            return None
        first = items.groupBy("item_id").agg(F.min(F.struct("_row", *cols)).alias("_m"))
        return first.select("item_id", *[F.col("_m")[c].alias(c) for c in cols])
    cols = [c for c in METADATA_COLUMNS if c in ev.columns]
    if not cols:
        return None
    key = ("session_id", "ts", "_row")
    aggs = [F.min(F.when(F.col(c).isNotNull(), F.struct(*key, c)))[c].alias(c) for c in cols]
    return ev.groupBy("item_id").agg(*aggs)
