"""``sessionrec prepare --source kuairand`` (or ``--source trivago --exposures``): exposure logs
-> deduplicated, split, encoded data.

Output directory (written to a temporary sibling and renamed only when complete)::

    DATA_DIR/
      manifest.json       kind "exposures", source, resolved config, counts of every step
      config.toml         the resolved ExposureConfig
      exposures.parquet   user_idx, item_idx, ts (µs), click, like, follow, comment, split
                          (0 train, 1 valid, 2 test), ordered by user, time, then the
                          display position where the source has one (trivago), then item
      items.parquet       item_idx, item_id and the source's side-feature codes (0 = unknown;
                          kuairand: ITEM_FEATURES, trivago: exposures.trivago.FEATURES)
      users.parquet       user_idx, user_id

Steps, each counted in the manifest (nothing is dropped silently):

0. impression lists the source flags ``click_not_shown`` (a trivago clickout whose clicked
   hotel is not in its own list) are dropped whole (``lists_click_not_shown_dropped``);
1. exact duplicate rows are dropped (KuaiRand-Pure logs some exposures twice: 5,460 rows of
   the shared slice), then rows equal in every canonical column (user, item, time, labels)
   but differing in a column we do not keep (e.g. play time: 423 more);
2. rows repeating a (user, item, time) with different labels are merged into one exposure
   whose labels are the maximum (a click logged on either row is a click);
3. users with fewer than ``min_exposures`` exposures are dropped: the per-user split needs at
   least one test exposure after a training history (5 gives 3 train, 1 valid, 1 test);
4. each user's time-ordered exposures are split: the last ``test_fraction`` (rounded half up,
   at least one) is test, the ``valid_fraction`` before it valid, the rest train — seed 001's
   80/20 split of Dataset I, with a validation tail cut from the 80 % for early stopping.

``split_unit = "list"`` (trivago's default) counts *impression lists* instead of exposures in
steps 3 and 4: the exposures of a user sharing one time form one list (one clickout), and a
list is never cut between train and test (its click would otherwise be visible from its other
half). Within a list rows keep the source's display ``position`` order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from sessionrec.config import dump_toml, to_dict
from sessionrec.data.exposures import kuairand, trivago
from sessionrec.data.exposures.schema import ITEM_FEATURES, LABELS, check_exposures
from sessionrec.data.io import atomic_directory
from sessionrec.errors import ConfigError, EmptyDataError, valid_choices

log = logging.getLogger(__name__)

TRAIN, VALID, TEST = 0, 1, 2
KIND = "exposures"
SPLIT_UNITS = ("exposure", "list")
# Optional columns of a source's frame beside the canonical ones (see the module docstring).
POSITION, CLICK_NOT_SHOWN, EXACT_COPY = "position", "click_not_shown", "exact_copy"


@dataclass(frozen=True)
class ExposureSource:
    """An exposure adapter: ``read`` -> canonical exposures, ``read_items`` -> raw item table,
    ``encode_items`` (raw items, item ids, training exposures) -> vocabulary + five side-feature
    code columns (computed from the training exposures where they aggregate exposures);
    ``defaults`` are ExposureConfig values the source starts from (a config overrides them)."""

    name: str
    read: Callable[[Path], pl.DataFrame]
    read_items: Callable[[Path], pl.DataFrame | None]
    shared_dir: str
    description: str
    encode_items: Callable[[pl.DataFrame | None, pl.Series, pl.DataFrame | None],
                           pl.DataFrame] | None = None
    defaults: dict = field(default_factory=dict)


EXPOSURE_SOURCES = {
    "kuairand": ExposureSource("kuairand", kuairand.read_exposures, kuairand.read_items,
                               "kuairand-pure-slice",
                               "KuaiRand feed exposures: click / not-click, like, follow, "
                               "comment, video side features"),
    "trivago": ExposureSource("trivago", trivago.read_exposures, trivago.read_items, "trivago",
                              "trivago clickout impression lists: click / not-click per shown "
                              "hotel; city, price, platform, position features",
                              encode_items=trivago.encode_items,
                              defaults={"split_unit": "list", "min_exposures": 3}),
}


def get_exposure_source(name: str) -> ExposureSource:
    try:
        return EXPOSURE_SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown exposure source {name!r}; "
                          f"{valid_choices(name, EXPOSURE_SOURCES)}") from None


@dataclass(frozen=True)
class ExposureConfig:
    min_exposures: int = 5  # per user, in split units; fewer cannot give train and test
    test_fraction: float = 0.2
    valid_fraction: float = 0.1  # 0: no validation split
    split_unit: str = "exposure"  # or "list": a user's exposures sharing one time

    def __post_init__(self) -> None:
        if self.split_unit not in SPLIT_UNITS:
            raise ConfigError(f"split_unit {self.split_unit!r}; "
                              f"{valid_choices(self.split_unit, SPLIT_UNITS)}")
        if (self.min_exposures < 3 and self.valid_fraction > 0) or self.min_exposures < 2:
            raise ConfigError("min_exposures must be >= 2 (>= 3 with a validation split): "
                              "each user needs train and test exposures")
        if not 0 < self.test_fraction < 1 or not 0 <= self.valid_fraction < 1 \
                or self.test_fraction + self.valid_fraction >= 1:
            raise ConfigError("test_fraction in (0, 1), valid_fraction in [0, 1) and their sum "
                              "< 1")


def deduplicate(df: pl.DataFrame, counts: dict[str, int]) -> pl.DataFrame:
    """Drop exact duplicates, then merge rows sharing (user, item, ts) (labels: maximum)."""
    counts["exact_duplicates_dropped"] = 0
    if EXACT_COPY in df.columns:
        counts["exact_duplicates_dropped"] = int(df[EXACT_COPY].sum())
        df = df.filter(~pl.col(EXACT_COPY)).drop(EXACT_COPY)
    n = df.height
    df = df.unique(maintain_order=True)
    counts["canonical_duplicates_dropped"] = n - df.height
    key = ["user_id", "item_id", "ts"]
    n = df.height
    extra = [c for c in df.columns if c not in (*key, *LABELS)]  # e.g. position: the first
    df = df.group_by(key, maintain_order=True).agg(pl.col(list(LABELS)).max(),
                                                   pl.col(extra).first())
    counts["conflicting_repeats_merged"] = n - df.height
    return df


def split_positions(n: np.ndarray, test_fraction: float, valid_fraction: float,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per user of ``n`` exposures: (number of test, number of valid) exposures.

    Test is ``test_fraction * n`` rounded half up and at least 1; valid likewise but may be
    0 (with ``valid_fraction`` 0). E.g. n = 10, 0.2 / 0.1 -> 2 test, 1 valid, 7 train.
    """
    n_test = np.maximum(1, np.floor(n * test_fraction + 0.5)).astype(np.int64)
    n_valid = np.floor(n * valid_fraction + 0.5).astype(np.int64)
    if valid_fraction > 0:
        n_valid = np.maximum(1, n_valid)
    return n_test, n_valid


def unit_index(df: pl.DataFrame, split_unit: str) -> np.ndarray:
    """Per row of ``df`` (sorted by user then time) its split unit: the row, or its list.

    A list is a run of rows of one user with one ``ts``; units are numbered 0, 1, ... in
    order across all users.
    """
    if split_unit == "exposure":
        return np.arange(df.height)
    user, ts = df["user_idx"].to_numpy(), df["ts"].to_numpy()
    new = np.r_[True, (user[1:] != user[:-1]) | (ts[1:] != ts[:-1])]
    return np.cumsum(new) - 1


def split_labels(df: pl.DataFrame, cfg: ExposureConfig) -> pl.Series:
    """Split code of each row of ``df`` (sorted by user then time), by ``cfg.split_unit``."""
    unit = unit_index(df, cfg.split_unit)
    first = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])  # first row of each unit
    unit_user = df["user_idx"].to_numpy()[first]
    starts = np.flatnonzero(np.r_[True, unit_user[1:] != unit_user[:-1]])
    n = np.diff(np.r_[starts, len(unit_user)])
    n_test, n_valid = split_positions(n, cfg.test_fraction, cfg.valid_fraction)
    pos_from_end = np.arange(len(unit_user)) - np.repeat(starts + n, n)  # -1 = last
    t = np.repeat(n_test, n)
    v = np.repeat(n_valid, n)
    split = np.where(pos_from_end >= -t, TEST, np.where(pos_from_end >= -t - v, VALID, TRAIN))
    return pl.Series("split", split[unit].astype(np.int8))


def encode_items(items: pl.DataFrame | None, item_ids: pl.Series,
                 train: pl.DataFrame | None = None) -> pl.DataFrame:
    """Item vocabulary (``item_idx`` by sorted id) with dense side-feature codes (0 unknown).

    KuaiRand's features are the videos' own catalogue facts (author, tag, kind, music,
    duration), not statistics of exposures, so ``train`` (the training exposures, which a
    source whose features aggregate exposures must restrict itself to) is not needed here.
    """
    del train
    vocab = pl.DataFrame({"item_id": item_ids.unique().sort()}).with_row_index("item_idx")
    vocab = vocab.with_columns(pl.col("item_idx").cast(pl.Int64))
    if items is None:
        return vocab.with_columns(pl.lit(0, pl.Int64).alias(f) for f in ITEM_FEATURES)
    raw = vocab.join(items.unique("item_id", keep="first"), on="item_id", how="left",
                     maintain_order="left")
    seconds = raw["duration_ms"] / 1000.0
    # log2-second buckets: 1 s, 2 s, 4 s ... 1024+ s -> codes 1..11; unknown 0
    duration = (seconds.clip(1.0, 1024.0).log(2).floor().cast(pl.Int64) + 1).fill_null(0)
    codes = {f: (raw[f].rank("dense").cast(pl.Int64)).fill_null(0)
             for f in ("author", "tag", "kind", "music")}
    return vocab.with_columns(**codes, duration=duration)


def drop_unshown_clicks(df: pl.DataFrame, counts: dict[str, int]) -> pl.DataFrame:
    """Drop the lists flagged ``click_not_shown`` (counted), and the flag column."""
    if CLICK_NOT_SHOWN not in df.columns:
        return df
    bad = df.filter(pl.col(CLICK_NOT_SHOWN))
    counts["lists_click_not_shown_dropped"] = bad.select("user_id", "ts").n_unique()
    counts["exposures_click_not_shown_dropped"] = bad.height
    return df.filter(~pl.col(CLICK_NOT_SHOWN)).drop(CLICK_NOT_SHOWN)


def drop_short_users(df: pl.DataFrame, cfg: ExposureConfig,
                     counts: dict[str, int]) -> pl.DataFrame:
    """Drop users with fewer than ``min_exposures`` split units (exposures or lists)."""
    unit = (pl.len() if cfg.split_unit == "exposure" else pl.col("ts").n_unique()).alias("units")
    per_user = df.group_by("user_id").agg(unit, exposures=pl.len())
    short = per_user.filter(pl.col("units") < cfg.min_exposures)
    counts["users_below_min_exposures"] = short.height
    counts["exposures_of_short_users"] = int(short["exposures"].sum())
    if cfg.split_unit == "list":
        counts["lists_of_short_users"] = int(short["units"].sum())
    out = df.join(short.select("user_id"), on="user_id", how="anti")
    if out.height == 0:
        raise EmptyDataError(f"no user has >= {cfg.min_exposures} {cfg.split_unit}s")
    return out


def build(df: pl.DataFrame, items: pl.DataFrame | None, cfg: ExposureConfig,
          counts: dict[str, int], encode: Callable | None = None,
          ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(exposures, items, users) tables of a prepared directory from canonical exposures.

    ``encode`` turns (raw items, item ids) into the vocabulary with feature codes (default:
    KuaiRand's :func:`encode_items`).
    """
    check_exposures(df, "exposure source")  # exact_copy (optional) flags logging copies
    counts["raw_exposures"] = df.height
    if df.height == 0:
        raise EmptyDataError("the input has no exposures")
    df = drop_unshown_clicks(df, counts)
    df = deduplicate(df, counts)
    df = drop_short_users(df, cfg, counts)
    users = pl.DataFrame({"user_id": df["user_id"].unique().sort()}).with_row_index("user_idx")
    users = users.with_columns(pl.col("user_idx").cast(pl.Int64))
    ids = pl.DataFrame({"item_id": df["item_id"].unique().sort()}).with_row_index("item_idx")
    ids = ids.with_columns(pl.col("item_idx").cast(pl.Int64))  # the vocabulary's order
    order = [POSITION] if POSITION in df.columns else []
    df = (df.join(users, on="user_id").join(ids, on="item_id")
          .with_columns(ts=pl.col("ts").dt.epoch("us"))
          .sort(["user_idx", "ts", *order, "item_idx"])
          .select("user_id", "user_idx", "item_idx", "ts", *LABELS))
    df = df.with_columns(split_labels(df, cfg))
    # Item features may only be computed from the training exposures (no test statistics).
    train = df.filter(pl.col("split") == TRAIN).select("user_id", "ts")
    vocab = (encode or encode_items)(items, ids["item_id"], train)
    df = df.drop("user_id")
    _count_result(df, vocab, counts, cfg.split_unit)
    return df, vocab, users


def _count_result(df: pl.DataFrame, vocab: pl.DataFrame, counts: dict[str, int],
                  split_unit: str = "exposure") -> None:
    counts["exposures"] = df.height
    counts["users"] = int(df["user_idx"].n_unique())
    counts["items"] = vocab.height
    if split_unit == "list":
        counts["lists"] = df.select("user_idx", "ts").n_unique()
    for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        part = df.filter(pl.col("split") == code)
        counts[f"{name}_exposures"] = part.height
        counts[f"{name}_clicks"] = int(part["click"].sum())
        if split_unit == "list":
            counts[f"{name}_lists"] = part.select("user_idx", "ts").n_unique()
    clicks = df.group_by("user_idx").agg(pl.col("click").sum())
    counts["users_without_clicks"] = int((clicks["click"] == 0).sum())
    test = df.filter(pl.col("split") == TEST).group_by("user_idx").agg(
        pos=pl.col("click").sum(), n=pl.len())
    counts["test_users_with_click_and_non_click"] = int(
        ((test["pos"] > 0) & (test["pos"] < test["n"])).sum())
    train_items = set(df.filter(pl.col("split") == TRAIN)["item_idx"].to_list())
    counts["test_exposures_of_items_unseen_in_train"] = int(
        (~df.filter(pl.col("split") == TEST)["item_idx"].is_in(list(train_items))).sum())
    first_feature = vocab.columns[2]  # after item_idx, item_id
    counts["items_without_features"] = int((vocab[first_feature] == 0).sum())


def prepare_exposures(source: ExposureSource, path: Path, out: Path, cfg: ExposureConfig,
                      overwrite: bool = False) -> dict:
    """Read, deduplicate, split and encode ``path`` into the directory ``out``; the manifest."""
    counts: dict[str, int] = {}
    df, items, users = build(source.read(Path(path)), source.read_items(Path(path)), cfg, counts,
                             source.encode_items)
    manifest = {"kind": KIND, "source": source.name, "input": str(path),
                "config": to_dict(cfg), "item_features": items.columns[2:], "counts": counts}
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        df.write_parquet(tmp / "exposures.parquet")
        items.write_parquet(tmp / "items.parquet")
        users.write_parquet(tmp / "users.parquet")
        (tmp / "config.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for key in ("exact_duplicates_dropped", "conflicting_repeats_merged",
                "users_below_min_exposures"):
        log.info("%s: %s = %d", source.name, key, counts[key])
    return manifest


def is_exposure_dir(path: Path) -> bool:
    """True if ``path`` is a directory written by :func:`prepare_exposures`."""
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        return False
    return json.loads(manifest.read_text(encoding="utf-8")).get("kind") == KIND
