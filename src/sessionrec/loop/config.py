"""``loop.toml``: what one retrain reads, trains, compares and whom it asks to promote.

Example (every key but ``data.raw`` / ``data.archive`` has a default)::

    root = "runs/loop/retrain"        # decisions, promotion history and the lock live here

    [data]
    raw = "runs/loop/raw"             # a Galaxus-format raw folder ... or:
    # archive = "sqlite:///runs/loop/archive.db"   # the API's archive, exported first
    window_days = 14                  # days of events up to the newest one (or `until`)
    holdout_days = 1                  # the newest days: the fresh held-out days
    prepare = { filter = { min_item_support = 2 } }   # PrepareConfig overrides

    [model]                           # what `sessionrec train` takes as [model]
    name = "gru4rec"
    params = { n_epochs = 3 }

    [decision]
    metric = "recall@20"
    margin = 0.005                    # promote unless candidate < live - margin

    [serve]
    url = "http://127.0.0.1:8000"     # the server whose /admin/reload promotes
    token_env = "SESSIONREC_ADMIN_TOKEN"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sessionrec.config import load_config
from sessionrec.errors import ConfigError
from sessionrec.evaluation.metrics import parse_metric
from sessionrec.runs import ModelConfig


@dataclass(frozen=True)
class WindowConfig:
    raw: str = ""  # a Galaxus-format raw folder (sessionrec synth, archive export)
    archive: str = ""  # or the API's archive (sqlite:///..., postgresql://...)
    source: str = "galaxus"
    window_days: float = 14.0
    holdout_days: float = 1.0
    until: str = ""  # end of the window (date or date-time with offset); "" = newest event
    prepare: dict = field(default_factory=dict)  # PrepareConfig overrides


@dataclass(frozen=True)
class DecisionConfig:
    metric: str = "recall@20"
    margin: float = 0.0  # absolute: refuse when candidate < live - margin
    promote: bool = True  # false: shadow-evaluate and record only
    protocol: str = "next-item"


@dataclass(frozen=True)
class ServeConfig:
    url: str = "http://127.0.0.1:8000"
    token_env: str = "SESSIONREC_ADMIN_TOKEN"
    timeout_s: float = 120.0  # a reload loads the model: allow for a large one


@dataclass(frozen=True)
class LoopConfig:
    root: str = "runs/retrain"
    data: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        d = self.data
        if bool(d.raw) == bool(d.archive):
            raise ConfigError("data: give exactly one of data.raw (a raw folder) and "
                              "data.archive (an archive URL)")
        if d.window_days <= d.holdout_days or d.holdout_days <= 0:
            raise ConfigError(f"data.window_days ({d.window_days}) must exceed "
                              f"data.holdout_days ({d.holdout_days}) > 0: the days before "
                              "the held-out days are the training days")
        try:
            parse_metric(self.decision.metric)
        except ValueError as err:
            raise ConfigError(f"decision.metric: {err}") from None
        if self.decision.margin < 0:
            raise ConfigError("decision.margin must be >= 0")
        if self.decision.protocol not in ("next-item", "last-item"):
            raise ConfigError("decision.protocol: next-item or last-item")


def load_loop_config(path: str | Path | None, overrides: list[str] | tuple = ()) -> LoopConfig:
    """``loop.toml`` with ``--set`` overrides (relative paths stay relative to the cwd)."""
    return load_config(LoopConfig, path, overrides)
