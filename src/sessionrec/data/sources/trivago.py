"""trivago RecSys Challenge 2019 hotel-search sessions.

``path`` is the folder ``../shared/data/trivago`` (``trivago_val_100k.parquet``, or the
challenge's ``train.csv``) or one such file. Columns used: ``user_id, session_id`` (text),
``timestamp`` (Unix seconds), ``action_type``, ``reference``.

Only actions on a hotel become events: ``clickout item``, ``interaction item *`` and ``search
for item``, whose ``reference`` is the hotel id (``item_id``); the other actions refer to
destinations, filters or sort orders and are not item events. ``event_type`` is the
``action_type``. The log writes ``unknown`` where it does not know the hotel (4 ``interaction
item info`` rows of the shared slice); such a row cannot be an item event and is skipped with a
logged warning. Any other non-numeric reference on an item row is a :class:`DataError`; its row
number counts every row of the file.

The impression lists of ``clickout item`` rows (shown but not clicked hotels) are not events
here; :mod:`sessionrec.data.exposures.trivago` reads them as exposures
(``sessionrec prepare --source trivago --exposures``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row, to_integer
from sessionrec.data.sources._common import find_file, read_columns, to_text, unix_time
from sessionrec.data.sources.base import Source, register
from sessionrec.errors import DataError

COLUMNS = ("user_id", "session_id", "timestamp", "action_type", "reference")
ITEM_ACTIONS = ("clickout item", "search for item")
ITEM_INTERACTION_PREFIX = "interaction item "
UNKNOWN_ITEM = "unknown"

log = logging.getLogger(__name__)


def trivago_file(path: Path) -> Path:
    """The session-log file: ``path`` itself, or the slice (else ``train.*``) in the folder."""
    path = Path(path)
    return path if path.is_file() else find_file(path, ["trivago_val_100k.*", "train.*"])


def read_events(path: Path) -> pl.LazyFrame:
    """Canonical item events from the folder or one session-log file."""
    path = trivago_file(path)
    df = read_columns(path, COLUMNS)
    action = to_text(df, "action_type", path)
    on_item = action.is_in(ITEM_ACTIONS) | action.str.starts_with(ITEM_INTERACTION_PREFIX)
    unknown = on_item & (df["reference"].cast(pl.String) == UNKNOWN_ITEM).fill_null(False)
    if unknown.any():
        log.warning("%s: skipped %d item actions whose reference is %r", path, unknown.sum(),
                    UNKNOWN_ITEM)
        on_item &= ~unknown
    # Parse references of item rows only, before filtering, so an error names the file's row.
    references = df.with_columns(reference=pl.when(on_item).then(pl.col("reference")))
    item = to_integer(references, "reference", path, nullable=True)
    missing = on_item & item.is_null()
    if missing.any():
        raise DataError("item action without a hotel id", path=str(path), column="reference",
                        row=first_bad_row(df, missing))
    return df.select(
        session_id=to_text(df, "session_id", path),
        user_id=to_text(df, "user_id", path),
        item_id=item,
        ts=unix_time(df, "timestamp", path, "s"),
        event_type=action,
    ).filter(on_item).lazy()


SOURCE = register(Source(
    name="trivago",
    read=read_events,
    description="trivago RecSys Challenge 2019 hotel-search sessions: clickouts and item "
                "interactions as events",
    user_aware=True,
    session_key="given",
    split="time",
    shared_dir="trivago",
    defaults={"clean": {"user_aware": False},
              "filter": {"min_item_support": 2, "min_session_length": 2},
              "split": {"test_days": 0.25, "valid_days": 0.25}},
))
