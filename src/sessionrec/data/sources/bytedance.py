"""ByteDance / Douyin short-video exposures (ICME 2019 challenge), a 200-row sample.

``path`` is the folder ``../shared/data/bytedance-sample`` (``byterec_sample.parquet``) or one
file: that Parquet, or the original tab-separated text without a header, whose columns are
``uid, user_city, item_id, author_id, item_city, channel, finish, like, music_id, device, time,
duration_time``.

Only ``uid`` (``user_id``), ``item_id`` and ``time`` are kept. ``time`` is an anonymised,
shifted timestamp, read as Unix seconds: the dates it gives (around the year 3650) are
meaningless, but its order and differences are kept. There are no session ids, so
``session_id`` is the user and sessions are cut by a time gap. The sample exists to show that
the format fits the schema; with almost one event per user it is far too small to train on.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import to_integer
from sessionrec.data.sources._common import find_file, read_columns, unix_time
from sessionrec.data.sources.base import Source, register

ALL_COLUMNS = ("uid", "user_city", "item_id", "author_id", "item_city", "channel", "finish",
               "like", "music_id", "device", "time", "duration_time")
COLUMNS = ("uid", "item_id", "time")


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events (user, video, time) from the folder or one exposure file."""
    path = Path(path)
    if not path.is_file():
        path = find_file(path, ["byterec_sample.*"])
    df = read_columns(path, COLUMNS, names=ALL_COLUMNS)
    user = to_integer(df, "uid", path)
    return df.select(
        session_id=user,
        user_id=user,
        item_id=to_integer(df, "item_id", path),
        ts=unix_time(df, "time", path, "s"),
    ).lazy()


SOURCE = register(Source(
    name="bytedance",
    read=read_events,
    description="ByteDance ICME 2019 short-video exposures, 200-row sample: a format example, "
                "too small to train on",
    user_aware=False,
    session_key="gap",
    split="time",
    shared_dir="bytedance-sample",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2}},
))
