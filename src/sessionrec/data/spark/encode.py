"""Encode and write on Spark: vocabularies by first appearance, the split files, the run.

Mirrors :mod:`sessionrec.data.encode` and the Polars ``prepare``: item indices number the
items of the training split in order of first appearance (canonical event order: session,
time, input position), user indices the users in order of their first kept session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionrec.data.schema import METADATA_COLUMNS, canonical_order
from sessionrec.data.spark import prepare as sp
from sessionrec.data.spark import steps
from sessionrec.data.spark.session import get_session, spark_errors
from sessionrec.data.split import SPLIT_NAMES, TRAIN
from sessionrec.errors import DataError, EmptyDataError

ORDER = ["session_id", "ts", "_row"]


def item_vocab(final: Any, metadata: Any | None) -> Any:
    F = steps._f()
    train = final.where(F.col("label") == TRAIN)
    first = train.groupBy("item_id").agg(F.min(F.struct(*ORDER)).alias("_first"),
                                         F.count("*").alias("train_events"))
    vocab = steps.dense_index(first, ["_first"], "item_idx").select(
        F.col("item_idx").cast("int"), "item_id", F.col("train_events").cast("long"))
    if metadata is not None:
        meta_cols = [c for c in metadata.columns if c != "item_id"]
        vocab = vocab.join(metadata, "item_id", "left").select(
            "item_idx", "item_id", "train_events", *meta_cols)
    return vocab.localCheckpoint()


def user_vocab(final: Any) -> Any:
    F = steps._f()
    first = final.groupBy("user_id").agg(F.min("session_id").alias("_first"))
    return steps.dense_index(first, ["_first"], "user_idx").select(
        F.col("user_idx").cast("int"), "user_id").localCheckpoint()


def run_steps(source: Any, path: Path, tmp: Path, cfg: Any, res: Any,
              counts: dict[str, int], clock: Any) -> tuple[dict, int, int | None, list]:
    """Every step on Spark, writing into ``tmp``; returns (split counts, items, users, passes)."""
    scratch = tmp / "_spark"
    events_path, items_path = sp.stage(source, path, tmp / "_staging", counts)
    spark = get_session(cfg.spark)
    with spark_errors():
        # The codec is the run's (write.level is Polars-only: Spark keeps its zstd default).
        spark.conf.set("spark.sql.parquet.compression.codec", cfg.write.compression)
        scratch.mkdir()
        ev = spark.read.parquet(str(events_path))
        ev = sp.clean_and_sessionize(ev, cfg, res, counts)
        if counts["clean_events"] == 0:
            raise EmptyDataError("cleaning removed every event (bots, anonymous users or event "
                                 "types)", path=str(path))
        clock.lap("read_clean_sessionize")
        data_cols = [c for c in ev.columns if c not in sp.DROPPED]
        if cfg.partitions:
            sp.write_partitions(ev, data_cols, tmp / "sessions", scratch, cfg.partitions,
                                res.user_aware)
        clock.lap("aggregate")
        rule = sp.split_rule(ev, cfg, res)
        alive, labels, passes = sp.filter_and_subsample(ev, rule, cfg, res, counts)
        clock.lap("filter_subsample_split")
        result = encode_write(spark, ev, alive, labels, items_path, data_cols, res, tmp, scratch)
        clock.lap("encode_write")
        spark.catalog.clearCache()
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(tmp / "_staging", ignore_errors=True)
    return (*result, passes)


def encode_write(spark: Any, ev: Any, alive: Any, labels: Any, items_path: Path | None,
                 data_cols: list[str], res: Any, tmp: Path,
                 scratch: Path) -> tuple[dict, int, int | None]:
    F = steps._f()
    final = ev.join(alive.select("_row"), "_row").join(labels, "session_id").localCheckpoint()
    vocab = item_vocab(final, sp.item_metadata(spark, ev, items_path))
    n_final = final.count()
    encoded = final.join(vocab.select("item_id", "item_idx"), "item_id")
    if encoded.count() != n_final:
        raise DataError(f"{n_final - encoded.count()} events have items outside the training "
                        "vocabulary", column="item_id",
                        hint="this is a bug in the split/filter steps")
    cols = [c for c in canonical_order(data_cols) if c not in ("split", *METADATA_COLUMNS)]
    cols.append("item_idx")
    users = None
    if res.user_aware:
        users = user_vocab(final)
        encoded = encoded.join(users, "user_id")
        cols.append("user_idx")
    encoded = encoded.localCheckpoint()
    stats = {r["label"]: (r["events"], r["sessions"]) for r in encoded.groupBy("label").agg(
        F.count("*").alias("events"), F.countDistinct("session_id").alias("sessions")).collect()}
    split_counts = {}
    for code, name in enumerate(SPLIT_NAMES):
        n_events, n_sessions = stats.get(code, (0, 0))
        split_counts[name] = {"events": int(n_events), "sessions": int(n_sessions)}
    if split_counts["train"]["events"] == 0 or split_counts["test"]["events"] == 0:
        raise EmptyDataError(f"the split left train={split_counts['train']['events']} and "
                             f"test={split_counts['test']['events']} events",
                             hint="use more data or change split.test_days")
    for code, name in enumerate(SPLIT_NAMES):
        part = encoded.where(F.col("label") == code).select(*cols, "_row")
        sp.write_one(part, ORDER, tmp / f"{name}.parquet", scratch, drop=["_row"])
    sp.write_one(vocab, ["item_idx"], tmp / "items.parquet", scratch)
    n_users = None
    if users is not None:
        sp.write_one(users, ["user_idx"], tmp / "users.parquet", scratch)
        n_users = users.count()
    return split_counts, vocab.count(), n_users
