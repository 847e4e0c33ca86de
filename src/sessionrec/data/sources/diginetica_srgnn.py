"""The SR-GNN Diginetica benchmark's training sessions, re-split for development.

Folder layout (``../shared/data/diginetica-srgnn-dev``; see its README), each file with the
columns ``session_id`` (date order), ``position`` (order inside the session), ``item_id``::

    train_sessions.parquet   -> split "train"
    test_sessions.parquet    -> split "test"   (the last 7.9 % of sessions; ids renumbered 0..)

Reading the folder returns train + test with their ``split``; a single file is read without a
``split`` column. There are no users (``user_id`` is null) and **no timestamps**: the data only
gives an order. ``ts`` is therefore a synthetic clock that keeps that order and nothing else:

* session number ``r`` (0, 1, ... in ``session_id`` order; test sessions numbered on after the
  last training session) starts at ``1970-01-01 00:00 UTC + r minutes``;
* its event at ``position`` ``p`` happens ``p * 100 ms`` after the session start, so a session
  (at most 600 events) ends before the next one starts.

So one synthetic "day" is 1,440 sessions (the real Diginetica logs had about 1,200 sessions a
day), ``split.valid_days`` carves about 1,440 sessions per day from the end of train, and the
time decays of STAN (``lambda_snh`` in days) weigh a neighbour by how many sessions ago it was;
the within-session gaps carry no information. ``session_id`` is the session number ``r``, so
the two files' sessions never share an id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row, to_integer
from sessionrec.data.schema import TS_DTYPE
from sessionrec.data.sources._common import find_file, read_columns
from sessionrec.data.sources.base import Source, register
from sessionrec.errors import DataError

COLUMNS = ("session_id", "position", "item_id")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SESSION_SLOT_MS = 60_000  # one session per synthetic minute
EVENT_STEP_MS = 100  # between consecutive events of a session
MAX_POSITION = SESSION_SLOT_MS // EVENT_STEP_MS - 1


def read_file(path: Path, first_session: int = 0) -> pl.DataFrame:
    """Canonical events of one file (no ``split``); sessions numbered from ``first_session``."""
    df = read_columns(path, COLUMNS)
    session = to_integer(df, "session_id", path)
    position = to_integer(df, "position", path)
    item = to_integer(df, "item_id", path)
    out_of_range = (position < 0) | (position > MAX_POSITION)
    if out_of_range.any():
        row = first_bad_row(df, out_of_range)
        raise DataError(f"position {position[row - 1]} is outside 0..{MAX_POSITION}",
                        path=str(path), column="position", row=row,
                        hint="positions count the events of a session from 0")
    repeated = pl.DataFrame({"s": session, "p": position}).is_duplicated()
    if repeated.any():
        row = first_bad_row(df, repeated)
        raise DataError(f"session {session[row - 1]} has position {position[row - 1]} twice",
                        path=str(path), column="position", row=row,
                        hint="each event of a session needs its own position")
    number = session.rank("dense").cast(pl.Int64) - 1 + first_session
    offset_ms = number * SESSION_SLOT_MS + position * EVENT_STEP_MS
    return pl.DataFrame({"session_id": number, "item_id": item, "offset": offset_ms}).select(
        "session_id",
        user_id=pl.lit(None, dtype=pl.Int64),
        item_id="item_id",
        ts=pl.lit(EPOCH).cast(TS_DTYPE) + pl.duration(milliseconds=pl.col("offset")),
    )


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical events: the folder's train + test (with ``split``), or one file."""
    path = Path(path)
    if path.is_file():
        return read_file(path).lazy()
    train = read_file(find_file(path, ["train_sessions.*"]))
    test = read_file(find_file(path, ["test_sessions.*"]),
                     first_session=int(train["session_id"].max()) + 1)
    return pl.concat([
        train.with_columns(split=pl.lit("train")),
        test.with_columns(split=pl.lit("test")),
    ]).lazy()


SOURCE = register(Source(
    name="diginetica-srgnn",
    read=read_events,
    description="SR-GNN's Diginetica benchmark, training sessions re-split for development "
                "(train / dev test); order only, no timestamps (ts is a synthetic clock)",
    user_aware=False,
    session_key="given",
    split="given",
    shared_dir="diginetica-srgnn-dev",
    defaults={"filter": {"min_item_support": 1, "min_session_length": 2},
              "split": {"valid": False}},
))
