"""KuaiRand(-Pure) feed exposures: click / not-click, like, follow, comment per shown video.

``path`` is the folder ``../shared/data/kuairand-pure-slice`` (every ``log_*.parquet`` or
``log_*.csv`` file, plus ``video_features_basic_pure.csv[.gz]``) or one log file. Columns used:
``user_id, video_id, time_ms`` and the labels ``is_click, is_like, is_follow, is_comment``;
a missing or non-0/1 label is a :class:`DataError` naming the file, column and row. A row
equal to an earlier row of its file in every column is flagged ``exact_copy`` (Parquet logs;
the shared slice has 5,460) for the prepare step to count and drop.

Video side features (from the video table; a video the table lacks gets unknown features):
``author_id``, the first tag of ``tag`` (``"39,68"`` -> ``39``: the primary category),
``video_type`` (NORMAL / AD), ``music_id`` and ``video_duration`` (ms).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.exposures.schema import binary_label
from sessionrec.data.io import to_integer, to_timestamp
from sessionrec.data.sources._common import read_columns
from sessionrec.errors import DataError

LABEL_COLUMNS = {"click": "is_click", "like": "is_like", "follow": "is_follow",
                 "comment": "is_comment"}
LOG_COLUMNS = ("user_id", "video_id", "time_ms", *LABEL_COLUMNS.values())
VIDEO_FILE = "video_features_basic_pure.csv*"
VIDEO_COLUMNS = ("video_id", "author_id", "video_type", "music_id", "tag", "video_duration")


def log_files(path: Path) -> list[Path]:
    """The exposure log files of a KuaiRand folder (or the one file given), sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError("input does not exist", path=str(path))
    files = sorted(p for p in path.glob("log_*") if p.suffix in (".parquet", ".csv", ".gz"))
    if not files:
        raise DataError("no KuaiRand log files (log_*.parquet or log_*.csv)", path=str(path),
                        hint="pass the kuairand-pure-slice folder or one log file")
    return files


def read_log(path: Path) -> pl.DataFrame:
    """One log file as canonical exposures (file order kept)."""
    df = read_columns(path, LOG_COLUMNS)
    everything = pl.read_parquet(path) if path.suffix == ".parquet" else None
    # A row equal to an earlier one in *every* source column is a logging duplicate; rows
    # sharing only (user, video, time) are merged later (see prepare.deduplicate).
    copy = (everything.select(pl.struct(pl.all()).is_first_distinct().not_()).to_series()
            if everything is not None
            else pl.Series([False] * df.height))
    out = pl.DataFrame({
        "user_id": to_integer(df, "user_id", path).cast(pl.String),
        "item_id": to_integer(df, "video_id", path),
        "ts": to_timestamp(df.with_columns(to_integer(df, "time_ms", path)), "time_ms", path,
                           unit="ms"),
    })
    out = out.with_columns(binary_label(df, column, path).alias(label)
                           for label, column in LABEL_COLUMNS.items())
    return out.with_columns(exact_copy=copy)


def read_exposures(path: Path) -> pl.DataFrame:
    """Every log file of ``path`` as one canonical exposure frame (files in name order)."""
    return pl.concat([read_log(f) for f in log_files(path)], how="vertical")


def read_items(path: Path) -> pl.DataFrame | None:
    """The video table as ``item_id`` + raw side features, or None when there is none."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    found = sorted(folder.glob(VIDEO_FILE))
    if not found:
        return None
    df = read_columns(found[0], VIDEO_COLUMNS)
    tag = df["tag"].cast(pl.String).str.split(",").list.first()
    return pl.DataFrame({
        "item_id": to_integer(df, "video_id", found[0]),
        "author": df["author_id"].cast(pl.String),
        "tag": tag,
        "kind": df["video_type"].cast(pl.String),
        "music": df["music_id"].cast(pl.String),
        "duration_ms": df["video_duration"].cast(pl.Float64, strict=False),
    })
