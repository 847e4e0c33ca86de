"""Sessions as flat arrays: the in-memory form every model and the evaluator work on.

Events of all sessions are concatenated in session order (and time order inside a session);
``offsets[s]:offsets[s + 1]`` are the events of session ``s``. This is the layout GRU4Rec's
session-parallel batching walks, and it lets baselines build sparse matrices without loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sessionrec.errors import DataError


@dataclass(frozen=True)
class Sessions:
    """Sessions of encoded items.

    Attributes:
        items: int64 [n_events], item indices in ``[0, n_items)``.
        offsets: int64 [n_sessions + 1], session boundaries into ``items``.
        ts: int64 [n_events], Unix time in seconds (float precision is not needed).
        users: int64 [n_sessions] user indices, -1 where the user is unknown.
        session_ids: [n_sessions] the original session ids (for reports).
        n_items: size of the item vocabulary (the ranking is over all of them).
        vocab: fingerprint of the item vocabulary ("" if unknown); models store it so that
            weights are never used with another vocabulary.
        event_types: optional int64 [n_events] behaviour code of every event (view, cart,
            ...): 0 where unknown, ``c >= 1`` for ``event_type_names[c - 1]``; None when the
            data has no ``event_type`` column (only behaviour-aware models read it).
        event_type_names: the behaviour names of the codes ``1, 2, ...``.
    """

    items: np.ndarray
    offsets: np.ndarray
    ts: np.ndarray
    users: np.ndarray
    session_ids: np.ndarray
    n_items: int
    vocab: str = ""
    event_types: np.ndarray | None = None
    event_type_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise DataError("offsets must be a 1-d array starting at 0")
        if self.offsets[-1] != len(self.items) or len(self.ts) != len(self.items):
            raise DataError("offsets, items and ts disagree in length")
        if len(self.users) != self.n_sessions or len(self.session_ids) != self.n_sessions:
            raise DataError("users and session_ids need one entry per session")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise DataError(f"item indices must lie in [0, {self.n_items})")
        if self.event_types is not None:
            if len(self.event_types) != len(self.items):
                raise DataError("event_types and items disagree in length")
            if len(self.event_types) and (self.event_types.min() < 0 or self.event_types.max()
                                          > len(self.event_type_names)):
                raise DataError(f"event type codes must lie in [0, "
                                f"{len(self.event_type_names)}] (0: unknown)")

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def session(self, s: int) -> np.ndarray:
        """Item indices of session ``s``."""
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    def session_of_event(self) -> np.ndarray:
        """int64 [n_events]: the session index of every event."""
        return np.repeat(np.arange(self.n_sessions, dtype=np.int64), self.lengths)

    def position_in_session(self) -> np.ndarray:
        """int64 [n_events]: 0 for a session's first event, 1 for the second, ..."""
        return np.arange(self.n_events, dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)

    def subset(self, sessions: np.ndarray) -> Sessions:
        """The sessions with the given indices, in that order."""
        sessions = np.asarray(sessions, dtype=np.int64)
        lengths = self.lengths[sessions]
        offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = np.repeat(self.offsets[:-1][sessions], lengths)
        idx = starts + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths))
        kinds = None if self.event_types is None else self.event_types[idx]
        return Sessions(self.items[idx], offsets, self.ts[idx], self.users[sessions],
                        self.session_ids[sessions], self.n_items, self.vocab, kinds,
                        self.event_type_names)

    @classmethod
    def from_lists(
        cls, sessions: list[list[int]], n_items: int, users: list[int] | None = None
    ) -> Sessions:
        """Build from Python lists (tests, small examples); timestamps are 0, 60, 120, ... s."""
        lengths = np.array([len(s) for s in sessions], dtype=np.int64)
        offsets = np.zeros(len(sessions) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        items = np.array([i for s in sessions for i in s], dtype=np.int64)
        ts = (np.arange(len(items)) * 60).astype(np.int64)
        u = np.full(len(sessions), -1, dtype=np.int64) if users is None else np.asarray(
            users, dtype=np.int64)
        return cls(items, offsets, ts, u, np.arange(len(sessions)), n_items)

    @classmethod
    def from_frame(cls, df: pl.DataFrame, n_items: int, vocab: str = "",
                   event_type_names: tuple[str, ...] | None = None) -> Sessions:
        """Build from a prepared split (columns session_id, item_idx, ts, optional user_idx
        and event_type).

        ``vocab`` is the fingerprint of the vocabulary the indices refer to.
        ``event_type_names`` numbers the behaviours (see :func:`event_type_names`; by default
        those of ``df``); without an ``event_type`` column ``event_types`` is None.

        Rows must already be grouped by session and ordered by time inside each session, as
        ``sessionrec prepare`` writes them.
        """
        for col in ("session_id", "item_idx", "ts"):
            if col not in df.columns:
                raise DataError(f"prepared split lacks column {col!r}", column=col)
        sid = df["session_id"]
        change = (sid != sid.shift(1)).fill_null(True)
        starts = change.arg_true().to_numpy().astype(np.int64)
        offsets = np.append(starts, len(df)).astype(np.int64)
        if len(df) == 0:
            offsets = np.zeros(1, dtype=np.int64)
        if sid.n_unique() != len(starts):
            raise DataError("a session's rows are not contiguous in the prepared split",
                            column="session_id")
        ts = df["ts"].dt.epoch("s").to_numpy().astype(np.int64)
        if "user_idx" in df.columns:
            users = df["user_idx"].fill_null(-1).to_numpy()[starts].astype(np.int64)
        else:
            users = np.full(len(starts), -1, dtype=np.int64)
        kinds, names = None, ()
        if "event_type" in df.columns:
            names = event_type_names((df,)) if event_type_names is None else event_type_names
            kinds = event_type_codes(df["event_type"], names)
        return cls(
            items=df["item_idx"].to_numpy().astype(np.int64),
            offsets=offsets,
            ts=ts,
            users=users,
            session_ids=sid.to_numpy()[starts],
            n_items=n_items,
            vocab=vocab,
            event_types=kinds,
            event_type_names=names,
        )


def event_type_names(frames: tuple[pl.DataFrame, ...]) -> tuple[str, ...]:
    """The sorted distinct non-null ``event_type`` values of ``frames`` (codes 1, 2, ...)."""
    names: set[str] = set()
    for df in frames:
        if "event_type" in df.columns:
            names.update(v for v in df["event_type"].unique().to_list() if v is not None)
    return tuple(sorted(names))


def event_type_codes(column: pl.Series, names: tuple[str, ...]) -> np.ndarray:
    """int64 codes of ``column``'s behaviours: ``1 + names.index(v)``, 0 for null or a
    name not in ``names``."""
    lookup = pl.DataFrame({"event_type": list(names),
                           "code": np.arange(1, len(names) + 1, dtype=np.int64)})
    joined = column.cast(pl.String).to_frame("event_type").join(
        lookup, on="event_type", how="left", maintain_order="left")
    return joined["code"].fill_null(0).to_numpy().astype(np.int64)
