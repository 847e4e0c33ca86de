"""``sessionrec prepare``: raw source files -> cleaned, filtered, split, encoded data directory.

Output directory (written to a temporary sibling and renamed only when complete)::

    DATA_DIR/
      manifest.json          source, resolved config, counts after every step, filter passes
      config.toml            the resolved PrepareConfig
      sessions/part-*.parquet  aggregated sessions before filtering, partitioned by user % N
      train.parquet valid.parquet test.parquet   encoded events in canonical order
      items.parquet          item vocabulary: item_idx, item_id, train_events, metadata
      users.parquet          user vocabulary: user_idx, user_id (user-aware runs)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from sessionrec.config import dump_toml, to_dict
from sessionrec.data import clean as cleaning
from sessionrec.data.encode import (
    check_encoded,
    dense_ids,
    item_metadata_from_events,
    item_vocab,
    lookup,
    user_vocab,
)
from sessionrec.data.filter import EventCodes, filter_until_stable
from sessionrec.data.io import atomic_directory
from sessionrec.data.schema import METADATA_COLUMNS, canonical_order, validate_schema
from sessionrec.data.sessionize import changes, sessionize
from sessionrec.data.sources.base import Source
from sessionrec.data.sources.events import SourceConfig, bind
from sessionrec.data.spark.session import SparkConfig
from sessionrec.data.split import (
    SPLIT_NAMES,
    TRAIN,
    SplitRule,
    fixed,
    given_labels,
    last_session_labels,
    time_cutoffs,
    time_labels,
)
from sessionrec.data.subsample import preset as get_preset
from sessionrec.data.subsample import subsample
from sessionrec.errors import ConfigError, DataError, EmptyDataError
from sessionrec.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanConfig:
    user_aware: bool | None = None  # None: the source's default
    drop_bots: bool = True
    drop_repeats: bool = False  # drop an event that repeats the previous item of its session
    event_types: tuple[str, ...] = ()  # keep only these event types; empty keeps all


@dataclass(frozen=True)
class SessionizeConfig:
    method: Literal["auto", "given", "gap"] = "auto"  # auto: the source's default
    gap_minutes: float = 30.0


@dataclass(frozen=True)
class FilterConfig:
    min_item_support: int = 5  # events per item, counted in train
    min_session_length: int = 3
    min_user_sessions: int = 5  # user-aware runs only
    max_passes: int = 100


@dataclass(frozen=True)
class SubsampleConfig:
    preset: Literal["MINI", "MIDI", "MAXI", "NONE"] = "NONE"
    users: int | None = None  # explicit targets override the preset's
    items: int | None = None
    seed: int = 0
    min_item_support: int = 1  # support in train re-applied after subsampling


@dataclass(frozen=True)
class SplitConfig:
    method: Literal["auto", "given", "last_session", "time"] = "auto"
    valid: bool = True  # also hold out a validation split
    test_days: float = 1.0  # time split: the last days are test
    valid_days: float = 1.0  # time/given split: the days before test are valid


@dataclass(frozen=True)
class WriteConfig:
    """How the output Parquet files are compressed (their rows do not depend on it)."""

    compression: Literal["zstd", "lz4", "snappy", "gzip", "uncompressed"] = "zstd"
    # zstd 1-22 (1 writes ~1.7x faster than zstd's default 3, for files ~19 % larger: see
    # docs/benchmarks.md), gzip 0-9; the other codecs have no level and ignore it. The Spark
    # engine writes the codec at Spark's own level.
    level: int = 1

    LEVELS: ClassVar[dict[str, tuple[int, int]]] = {"zstd": (1, 22), "gzip": (0, 9)}

    def __post_init__(self) -> None:
        if self.compression in self.LEVELS:
            lo, hi = self.LEVELS[self.compression]
            if not lo <= self.level <= hi:
                raise ConfigError(f"write.level for {self.compression} must be in {lo}..{hi}, "
                                  f"got {self.level}")

    def parquet(self) -> dict[str, Any]:
        """Keyword arguments for Polars' ``sink_parquet`` / ``write_parquet``."""
        level = self.level if self.compression in self.LEVELS else None
        return {"compression": self.compression, "compression_level": level}


@dataclass(frozen=True)
class PrepareConfig:
    clean: CleanConfig = field(default_factory=CleanConfig)
    sessionize: SessionizeConfig = field(default_factory=SessionizeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    subsample: SubsampleConfig = field(default_factory=SubsampleConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    source: SourceConfig = field(default_factory=SourceConfig)  # --source events only
    engine: Literal["polars", "spark"] = "polars"
    spark: SparkConfig = field(default_factory=SparkConfig)  # engine = "spark" only
    partitions: int = 8  # user partitions of the aggregated sessions; 0 skips writing them
    write: WriteConfig = field(default_factory=WriteConfig)

    def __post_init__(self) -> None:
        if self.partitions < 0:
            raise ConfigError("partitions must be >= 0")
        f = self.filter
        if f.min_item_support < 1 or f.min_session_length < 2 or f.min_user_sessions < 1:
            raise ConfigError("filter: min_item_support >= 1, min_session_length >= 2 (a "
                              "session needs a target) and min_user_sessions >= 1")


@dataclass(frozen=True)
class Resolved:
    """Choices that depend on the source: what ``auto`` became."""

    user_aware: bool
    session_method: str
    split_method: str


def resolve(cfg: PrepareConfig, source: Source) -> Resolved:
    user_aware = source.user_aware if cfg.clean.user_aware is None else cfg.clean.user_aware
    session_method = cfg.sessionize.method
    if session_method == "auto":
        session_method = source.session_key
    split_method = source.split if cfg.split.method == "auto" else cfg.split.method
    if split_method == "last_session" and not user_aware:
        raise ConfigError("split.method=last_session needs a user-aware run "
                          "(--set clean.user_aware=true)")
    return Resolved(user_aware, session_method, split_method)


def load_events(source: Source, path: Path, cfg: PrepareConfig, res: Resolved,
                counts: dict[str, int]) -> pl.DataFrame:
    """Read, clean and sessionize: the aggregated events in canonical order (eager).

    Two scans of the input: the event count and the distinct user agents (bots are matched on
    those), then the cleaned rows, streamed into :func:`sessionize`.
    """
    events = source.read(Path(path))
    validate_schema(events.collect_schema(), f"source {source.name!r} at {path}")
    events = cleaning.fill_user_from_last_logged_in(events)
    counts["raw_events"], agents = cleaning.agent_counts(events)
    if counts["raw_events"] == 0:
        raise EmptyDataError("the input has no events", path=str(path))
    if cfg.clean.drop_bots:
        bots = cleaning.bots_among(agents)
        counts["bot_user_agents"] = len(bots)
        events = cleaning.drop_bots(events, bots)
    events = cleaning.keep_event_types(events, cfg.clean.event_types)
    if res.user_aware:
        events = cleaning.drop_anonymous(events)
    events = events.drop([c for c in ("user_agent", "last_logged_in_user_id")
                          if c in events.collect_schema()])
    # Repeats go in sessionize's one gather of the rows (the same rule as
    # cleaning.drop_immediate_repeats); a session keeps its first event, so ids stay dense.
    df = sessionize(events, method=res.session_method, gap_minutes=cfg.sessionize.gap_minutes,
                    user_aware=res.user_aware, drop_repeats=cfg.clean.drop_repeats,
                    rows_hint=counts["raw_events"])
    counts["clean_events"] = len(df)
    if len(df) == 0:
        raise EmptyDataError("cleaning removed every event (bots, anonymous users or event "
                             "types)", path=str(path))
    return df


def event_codes(df: pl.DataFrame,
                user_aware: bool) -> tuple[EventCodes, pl.Series, pl.Series | None, np.ndarray]:
    """Dense codes of sessionized events, the item and user id of each code, session starts."""
    session = df["session_id"].rechunk().to_numpy().astype(np.int64, copy=False)
    starts = np.flatnonzero(changes(session))
    item, item_ids = dense_ids(df["item_id"])
    session_user, user_ids = None, None
    if user_aware:
        session_user, user_ids = dense_ids(df["user_id"].gather(starts))
    codes = EventCodes(session=session, item=item, session_user=session_user,
                       n_sessions=len(starts), n_items=len(item_ids))
    return codes, item_ids, user_ids, starts


def split_rule(df: pl.DataFrame, codes: EventCodes, starts: np.ndarray, cfg: PrepareConfig,
               res: Resolved) -> SplitRule:
    """The split rule for this run; time cutoffs are fixed once from the cleaned data."""
    s = cfg.split
    ts = df["ts"].dt.epoch("us").to_numpy()
    session_end = ts[np.append(starts[1:], len(ts)) - 1]  # events are time-ordered in a session
    if res.split_method == "last_session":
        assert codes.session_user is not None
        return lambda alive: last_session_labels(codes.session_user, alive, valid=s.valid)
    if res.split_method == "time":
        test_start, valid_start = time_cutoffs(int(ts.max()), s.test_days, s.valid_days, s.valid)
        return fixed(time_labels(session_end, test_start, valid_start))
    if res.split_method == "given":
        if "split" not in df.columns:
            raise ConfigError("split.method=given needs a source that ships its own split")
        given = df["split"].gather(starts)
        unknown = given.filter(~given.is_in(list(SPLIT_NAMES)))
        if len(unknown):
            raise DataError(f"unknown split label {unknown[0]!r}", column="split")
        given_codes = given.replace_strict(list(SPLIT_NAMES), [0, 1, 2],
                                           return_dtype=pl.Int8).to_numpy()
        return fixed(given_labels(given_codes, session_end, s.valid_days if s.valid else None))
    raise ConfigError(f"unknown split method {res.split_method!r}")


def write_partitions(df: pl.DataFrame, directory: Path, n: int, user_aware: bool,
                     write: WriteConfig | None = None) -> None:
    """Write events partitioned by ``user_id % n`` (session id for session-only data).

    Text user ids are numbered by their dense rank in sorted order first.

    Each partition is streamed from the frame into its file (``sink_parquet``), so the extra
    memory is a few batches, not a copy of the partition.
    """
    directory.mkdir()
    key = pl.col("user_id") if user_aware else pl.col("session_id")
    dtype = df.schema["user_id" if user_aware else "session_id"]
    # Text ids: the id's dense rank (0-based, in sorted order), which Spark computes the same.
    part = ((key.rank("dense") - 1).cast(pl.Int64) if dtype == pl.String else key) % n
    parts = df.select(part.cast(pl.Int32).alias("p"))["p"]
    sizes = np.bincount(parts.to_numpy(), minlength=n)
    frame = df.lazy().with_columns(parts.alias(PART))
    for p in np.flatnonzero(sizes):
        frame.filter(pl.col(PART) == p).drop(PART).sink_parquet(
            directory / f"part-{p:05d}.parquet", **(write or WriteConfig()).parquet())


PART = "__partition"  # a helper column name no source uses


def filter_and_subsample(codes: EventCodes, rule: SplitRule, cfg: PrepareConfig, res: Resolved,
                         counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray, list]:
    """Support filters until stable, then the optional subsample and filters again."""
    f = cfg.filter
    min_user = f.min_user_sessions if res.user_aware else 1
    alive, labels, passes = filter_until_stable(
        codes, rule, min_item_support=f.min_item_support,
        min_session_length=f.min_session_length, min_user_sessions=min_user,
        max_passes=f.max_passes)
    counts["filtered_events"] = int(alive.sum())
    sub = cfg.subsample
    target = get_preset(sub.preset) if sub.preset != "NONE" else None
    n_users = sub.users if sub.users is not None else (target.users if target else None)
    n_items = sub.items if sub.items is not None else (target.items if target else None)
    if n_users is None and n_items is None:
        return alive, labels, passes
    alive = subsample(codes, alive, labels, n_users=n_users, n_items=n_items,
                      min_session_length=f.min_session_length, min_user_sessions=min_user,
                      seed=sub.seed)
    if not alive.any():
        raise EmptyDataError("subsampling left no events", hint="ask for more items or users")
    alive, labels, more = filter_until_stable(
        codes, rule, min_item_support=sub.min_item_support,
        min_session_length=f.min_session_length, min_user_sessions=min_user, alive=alive,
        max_passes=f.max_passes)
    counts["subsampled_events"] = int(alive.sum())
    return alive, labels, passes + more


def prepare(source: Source, input_path: Path, out_dir: Path, cfg: PrepareConfig,
            *, overwrite: bool = False) -> dict[str, Any]:
    """Run every step on ``cfg.engine`` and write ``out_dir``; returns the manifest."""
    clock = Clock()
    source = bind(source, cfg.source, Path(input_path))
    res = resolve(cfg, source)
    counts: dict[str, int] = {}
    with atomic_directory(Path(out_dir), overwrite=overwrite) as tmp:
        if cfg.engine == "spark":
            from sessionrec.data.spark.encode import run_steps
        else:
            run_steps = polars_steps
        split_counts, n_items, n_users, passes = run_steps(source, Path(input_path), tmp, cfg,
                                                           res, counts, clock)
        manifest = {
            "source": source.name,
            "input": str(input_path),
            "engine": cfg.engine,
            "user_aware": res.user_aware,
            "sessionize": res.session_method,
            "split_method": res.split_method,
            "counts": counts,
            "splits": split_counts,
            "n_items": n_items,
            "n_users": n_users,
            "filter_passes": [vars(p) for p in passes],
            "seconds": clock.laps,
            "config": to_dict(cfg),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        (tmp / "config.toml").write_text(dump_toml(to_dict(cfg)))
    return manifest


def polars_steps(source: Source, input_path: Path, tmp: Path, cfg: PrepareConfig, res: Resolved,
                 counts: dict[str, int], clock: Clock) -> tuple[dict, int, int | None, list]:
    """Every step on Polars/NumPy, writing into ``tmp``; (split counts, items, users, passes).

    The aggregated sessions are written by a second thread while this one filters, splits
    and encodes (both only read the cleaned frame); ``aggregate`` is that thread's time, which
    overlaps the later steps'.
    """
    df = load_events(source, input_path, cfg, res, counts)
    clock.lap("read_clean_sessionize")
    with ThreadPoolExecutor(1, thread_name_prefix="prepare-aggregate") as pool:
        aggregate = pool.submit(_timed, write_partitions, df, tmp / "sessions",
                                cfg.partitions, res.user_aware,
                                cfg.write) if cfg.partitions else None
        codes, item_ids, user_ids, starts = event_codes(df, res.user_aware)
        rule = split_rule(df, codes, starts, cfg, res)
        alive, labels, passes = filter_and_subsample(codes, rule, cfg, res, counts)
        clock.lap("filter_subsample_split")
        metadata = source.read_items(Path(input_path)) if source.read_items else None
        metadata = metadata.collect() if metadata is not None else item_metadata_from_events(df)
        split_counts, items, users = encode_write(df, codes, item_ids, user_ids, alive, labels,
                                                  metadata, tmp, res.user_aware, cfg.write)
        clock.record("aggregate", aggregate.result() if aggregate is not None else 0.0)
    clock.lap("encode_write")
    return split_counts, len(items), None if users is None else len(users), passes


def _timed(fn: Callable[..., None], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return round(time.perf_counter() - start, 3)


def encode_write(df: pl.DataFrame, codes: EventCodes, item_ids: pl.Series,
                 user_ids: pl.Series | None, alive: np.ndarray, labels: np.ndarray,
                 metadata: pl.DataFrame | None, tmp: Path, user_aware: bool,
                 write: WriteConfig | None = None) -> tuple[dict, pl.DataFrame,
                                                            pl.DataFrame | None]:
    """Write the encoded splits and the vocabularies; (split counts, items, users).

    Each split is streamed from the cleaned frame into its file with the index columns
    attached, so no filtered copy of the events is materialised.
    """
    event_labels = labels[codes.session]
    items, index = item_vocab(item_ids, codes.item[alive & (event_labels == TRAIN)], metadata)
    item_idx = index[codes.item]
    check_encoded(item_idx[alive])
    keep_cols = [c for c in canonical_order(df.columns) if c not in ("split", *METADATA_COLUMNS)]
    extra = [pl.Series("item_idx", item_idx, dtype=pl.Int32)]
    del item_idx
    users = None
    if user_aware:
        assert codes.session_user is not None and user_ids is not None
        users, user_index = user_vocab(user_ids, codes.session_user[codes.session[alive]])
        extra.append(pl.Series("user_idx", lookup(codes.session, codes.session_user,
                                                  user_index), dtype=pl.Int32))
    event_split = np.where(alive, event_labels, -1).astype(np.int8)
    del event_labels
    frame = df.lazy().select(keep_cols).with_columns(*extra, pl.Series(SPLIT_COL, event_split))
    live = np.bincount(codes.session[alive], minlength=codes.n_sessions) > 0
    events = np.bincount(event_split[alive], minlength=len(SPLIT_NAMES))
    sessions = np.bincount(labels[live], minlength=len(SPLIT_NAMES))
    split_counts = {name: {"events": int(events[code]), "sessions": int(sessions[code])}
                    for code, name in enumerate(SPLIT_NAMES)}
    if split_counts["train"]["events"] == 0 or split_counts["test"]["events"] == 0:
        raise EmptyDataError(f"the split left train={split_counts['train']['events']} and "
                             f"test={split_counts['test']['events']} events",
                             hint="use more data or change split.test_days")
    options = (write or WriteConfig()).parquet()
    for code, name in enumerate(SPLIT_NAMES):
        frame.filter(pl.col(SPLIT_COL) == code).drop(SPLIT_COL).sink_parquet(
            tmp / f"{name}.parquet", **options)
    items.write_parquet(tmp / "items.parquet", **options)
    if users is not None:
        users.write_parquet(tmp / "users.parquet", **options)
    return split_counts, items, users


SPLIT_COL = "__split"  # a helper column name no source uses


class Clock:
    """Wall-clock laps for the manifest, shown as progress steps."""

    STEPS = 4  # the laps prepare() takes

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()
        self.progress = Progress(self.STEPS, "prepare", "steps")

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.record(name, now - self._last)
        self._last = now

    def record(self, name: str, seconds: float) -> None:
        """A step timed elsewhere (one that ran beside the others)."""
        self.laps[name] = round(seconds, 3)
        self.progress.step(name)
        if len(self.laps) == self.STEPS:
            self.progress.close()


def with_preset(cfg: PrepareConfig, name: str | None) -> PrepareConfig:
    """``cfg`` with ``subsample.preset`` set from a ``--preset`` option."""
    if name is None:
        return cfg
    if name.upper() not in ("MINI", "MIDI", "MAXI"):
        raise ConfigError(f"unknown preset {name!r}; choose MINI, MIDI or MAXI")
    return replace(cfg, subsample=replace(cfg.subsample, preset=name.upper()))


__all__ = ["PrepareConfig", "prepare", "with_preset"]
