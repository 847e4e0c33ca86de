"""A prepared exposure directory read back as NumPy arrays (no torch: data never imports it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sessionrec.data.exposures.prepare import KIND, TEST, TRAIN, VALID
from sessionrec.errors import DataError

SPLITS = {"train": TRAIN, "valid": VALID, "test": TEST}


@dataclass(frozen=True)
class Exposures:
    """Exposures ordered by user, time, item; ``offsets[u]..offsets[u+1]`` are user ``u``'s.

    ``item_features`` is int64 [n_items, F] of side-feature codes (0 unknown), the columns of
    ``items.parquet`` after ``item_idx, item_id`` (kuairand: author, tag, kind, music,
    duration; trivago: city, price, platform, position, price_rank); ``feature_sizes`` the
    number of codes of each (max code + 1).
    """

    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray  # int64 µs
    click: np.ndarray
    like: np.ndarray
    follow: np.ndarray
    comment: np.ndarray
    split: np.ndarray
    offsets: np.ndarray
    item_features: np.ndarray
    feature_sizes: tuple[int, ...]
    item_ids: np.ndarray
    user_ids: np.ndarray
    name: str = ""

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_features)


def from_frames(df: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame,
                name: str = "") -> Exposures:
    """:class:`Exposures` from the three tables of a prepared directory."""
    user = df["user_idx"].to_numpy().astype(np.int64)
    if len(user) and np.any(np.diff(user) < 0):
        raise DataError("exposures are not ordered by user_idx", column="user_idx")
    n_users = users.height
    offsets = np.searchsorted(user, np.arange(n_users + 1)).astype(np.int64)
    feats = items.drop("item_idx", "item_id").to_numpy().astype(np.int64)
    sizes = tuple(int(feats[:, j].max(initial=0)) + 1 for j in range(feats.shape[1]))
    col = {c: df[c].to_numpy().astype(np.int64) for c in
           ("item_idx", "ts", "click", "like", "follow", "comment", "split")}
    return Exposures(user, col["item_idx"], col["ts"], col["click"], col["like"], col["follow"],
                     col["comment"], col["split"], offsets, feats, sizes,
                     items["item_id"].to_numpy(), users["user_id"].to_numpy(), name)


def load_exposures(data_dir: Path, name: str = "") -> Exposures:
    """Read a directory written by :func:`~sessionrec.data.exposures.prepare.prepare_exposures`."""
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("kind") != KIND:
        raise DataError("not a prepared exposure directory (manifest.json kind != "
                        f"{KIND!r})", path=str(data_dir),
                        hint="prepare it with sessionrec prepare --source kuairand --out DIR")
    return from_frames(pl.read_parquet(data_dir / "exposures.parquet"),
                       pl.read_parquet(data_dir / "items.parquet"),
                       pl.read_parquet(data_dir / "users.parquet"), name or data_dir.name)
