"""What a source adapter is, and the registry of all of them.

An adapter turns one public dataset's files (or the Galaxus raw-log shards) into canonical events
(:mod:`sessionrec.data.schema`). It only renames, parses and types: cleaning, sessionizing and
filtering are the pipeline's job, so every dataset goes through the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from sessionrec.errors import ConfigError, valid_choices

Reader = Callable[[Path], pl.LazyFrame]
ItemReader = Callable[[Path], pl.LazyFrame | None]


@dataclass(frozen=True)
class Source:
    """A registered dataset adapter.

    Attributes:
        name: the ``--source`` name.
        read: ``read(path) -> LazyFrame`` of canonical events; ``path`` is a file or directory.
        description: one line for ``sessionrec prepare --help`` and the docs.
        user_aware: the data has real users with several sessions (HGRU4Rec-capable).
        session_key: ``"given"`` if the source has session ids worth keeping, ``"gap"`` if
            sessions must be cut by an inactivity gap.
        split: the default split: ``"given"`` (the source ships train/test), ``"last_session"``
            (per user) or ``"time"``.
        shared_dir: the folder name under ``../shared/data`` this adapter reads by default.
        read_items: optional ``read_items(path) -> LazyFrame | None`` of item metadata
            (``item_id``, ``brand``, ``category``, ``price``) kept apart from the events, for
            sources that ship a product table; otherwise metadata comes from event columns.
        defaults: prepare-config values this source needs by default, as a nested mapping
            (e.g. an already filtered benchmark split keeps sessions of length 2); user
            config files and ``--set`` overrides still win.
    """

    name: str
    read: Reader
    description: str
    user_aware: bool
    session_key: Literal["given", "gap"]
    split: Literal["given", "last_session", "time"]
    shared_dir: str | None = None
    read_items: ItemReader | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add ``source`` to the registry (module import time)."""
    if source.name in _REGISTRY:
        raise ValueError(f"source {source.name!r} registered twice")
    _REGISTRY[source.name] = source
    return source


def get_source(name: str) -> Source:
    """The adapter called ``name``; :class:`ConfigError` listing the valid names otherwise."""
    from sessionrec.data import sources  # noqa: F401  (imports every adapter module)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; {valid_choices(name, _REGISTRY)}") from None


def all_sources() -> dict[str, Source]:
    """Every registered adapter by name."""
    from sessionrec.data import sources  # noqa: F401

    return dict(_REGISTRY)
