"""The latest window of a raw folder or of the API's archive, prepared for one retrain.

The window is the ``window_days`` days up to ``until`` (default: the newest event); its last
``holdout_days`` are the held-out days (a time split without validation), the days before
them the training days. Sources are read as they are and filtered by time, so a raw folder
that keeps growing (daily ``archive export`` shards, a shop's own log) needs no copying.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.config import deep_merge, from_dict
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.data.sources.base import Source
from sessionrec.errors import EmptyDataError
from sessionrec.loop.config import WindowConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    start: datetime  # exclusive
    end: datetime  # inclusive
    holdout_start: datetime  # the held-out days begin here

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "holdout_start": self.holdout_start.isoformat()}


def window_ending(end: datetime, cfg: WindowConfig) -> Window:
    """The window of ``cfg.window_days`` days ending at ``end``."""
    return Window(start=end - timedelta(days=cfg.window_days), end=end,
                  holdout_start=end - timedelta(days=cfg.holdout_days))


def newest_event(source: Source, path: Path) -> datetime:
    """The time of the newest event of ``path``; :class:`EmptyDataError` when it has none."""
    newest = source.read(path).select(pl.col("ts").max()).collect().item()
    if newest is None:
        raise EmptyDataError("the raw data holds no events", path=str(path))
    return newest


def in_window(source: Source, window: Window) -> Source:
    """``source`` reading only the events inside ``window``."""
    read = source.read

    def read_window(path: Path) -> pl.LazyFrame:
        return read(path).filter((pl.col("ts") > window.start) & (pl.col("ts") <= window.end))

    return replace(source, read=read_window)


def window_prepare_config(source: Source, cfg: WindowConfig) -> PrepareConfig:
    """The source's defaults, the loop's ``data.prepare`` overrides, then what the loop
    needs: a time split whose test days are the held-out days, no validation split."""
    forced = {"split": {"method": "time", "test_days": cfg.holdout_days, "valid": False},
              "partitions": 0}
    return from_dict(PrepareConfig, deep_merge(deep_merge(source.defaults, cfg.prepare),
                                               forced))


def export_archive(url: str, since: datetime, out: Path) -> Path:
    """The archive's events since ``since`` as a Galaxus raw folder ``out``."""
    from sessionrec.archive.export import export_galaxus
    from sessionrec.archive.log import open_archive

    with open_archive(url) as archive:
        frame = archive.read_frame()
    export_galaxus(frame, out, since)
    return out


def prepare_window(cfg: WindowConfig, run_dir: Path, until: datetime | None
                   ) -> tuple[Path, Window, dict[str, Any]]:
    """Prepare the window into ``run_dir/data``; (data directory, window, manifest).

    Raises :class:`EmptyDataError` when the window holds nothing to train or hold out.
    """
    source = get_source(cfg.source)
    if cfg.archive:
        # The archive is exported from the window's start (or, without `until`, from
        # window_days before now: the newest event is not known before the export).
        end = until or datetime.now().astimezone()
        raw = export_archive(cfg.archive, end - timedelta(days=cfg.window_days),
                             run_dir / "raw")
    else:
        raw = Path(cfg.raw)
    if not raw.exists():
        raise EmptyDataError("the raw data folder does not exist", path=str(raw))
    window = window_ending(until or newest_event(source, raw), cfg)
    log.info("window %s .. %s (held out from %s)", window.start, window.end,
             window.holdout_start)
    data_dir = run_dir / "data"
    manifest = prepare(in_window(source, window), raw, data_dir,
                       window_prepare_config(source, cfg))
    return data_dir, window, manifest
