"""What the state store keeps per session and per user, and its binary form.

A session record holds the model's recurrent state of the session (float32), the items it
has seen (for seen-item filtering and the co-occurrence fallback), its user and timing. A user
record holds the user-level state of models that have one (HGRU4Rec) and the user's open
session. Both carry the ``model_key`` of the model that wrote them: a state written by another
model (after a hot reload) means nothing to the new one, so it is reset instead of used.

The binary form (Redis values) is little-endian: a fixed header, then the UTF-8 id text, the
float32 state and the int32 seen items::

    session: magic b"SRS1" | model_key 8s | created_at f8 | updated_at f8 | last_event_at f8
             | n_events u4 | last_item i4 | state_len u4 | n_seen u4 | user_len u2
             | user_id | state f4[state_len] | seen i4[n_seen]
    user:    magic b"SRU1" | model_key 8s | updated_at f8 | n_sessions u4 | state_len u4
             | open_len u2 | open_session | state f4[state_len]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sessionrec.errors import SessionRecError

_SESSION = struct.Struct("<4s8sdddIiIIH")
_USER = struct.Struct("<4s8sdIIH")
SESSION_MAGIC = b"SRS1"
USER_MAGIC = b"SRU1"


class RecordError(SessionRecError):
    """A stored value is not a record of this format (corrupt, truncated or foreign)."""


@dataclass(frozen=True)
class SessionRecord:
    state: np.ndarray  # float32 [state_size]
    seen: np.ndarray  # int32, the session's known items, oldest first (bounded)
    last_item: int  # the last known item index, -1 when none
    n_events: int  # events applied, known or not
    user_id: str | None
    model_key: bytes  # 8 bytes: which model wrote the state
    created_at: float  # unix seconds, server clock
    updated_at: float  # unix seconds, server clock (idle timeouts count from here)
    last_event_at: float  # unix seconds: the event's own timestamp, or the server clock

    def pack(self) -> bytes:
        user = (self.user_id or "").encode("utf-8")
        state = np.ascontiguousarray(self.state, dtype="<f4")
        seen = np.ascontiguousarray(self.seen, dtype="<i4")
        head = _SESSION.pack(SESSION_MAGIC, self.model_key, self.created_at, self.updated_at,
                             self.last_event_at, self.n_events, self.last_item, state.size,
                             seen.size, len(user))
        return b"".join((head, user, state.tobytes(), seen.tobytes()))

    @classmethod
    def unpack(cls, blob: bytes) -> SessionRecord:
        if len(blob) < _SESSION.size or blob[:4] != SESSION_MAGIC:
            raise RecordError(f"not a session record ({len(blob)} bytes, starts {blob[:4]!r})")
        (_, key, created, updated, last_event, n_events, last_item, n_state, n_seen,
         n_user) = _SESSION.unpack_from(blob)
        expected = _SESSION.size + n_user + 4 * n_state + 4 * n_seen
        if len(blob) != expected:
            raise RecordError(f"session record is {len(blob)} bytes, its header says {expected}")
        pos = _SESSION.size
        user = blob[pos:pos + n_user].decode("utf-8") if n_user else None
        pos += n_user
        state = np.frombuffer(blob, dtype="<f4", count=n_state, offset=pos).astype(np.float32)
        pos += 4 * n_state
        seen = np.frombuffer(blob, dtype="<i4", count=n_seen, offset=pos).astype(np.int32)
        return cls(state, seen, last_item, n_events, user, key, created, updated, last_event)


@dataclass(frozen=True)
class UserRecord:
    state: np.ndarray  # float32 [user_state_size]
    open_session: str | None  # the user's current session, ended when a new one starts
    n_sessions: int  # sessions folded into the state
    model_key: bytes
    updated_at: float

    def pack(self) -> bytes:
        open_session = (self.open_session or "").encode("utf-8")
        state = np.ascontiguousarray(self.state, dtype="<f4")
        head = _USER.pack(USER_MAGIC, self.model_key, self.updated_at, self.n_sessions,
                          state.size, len(open_session))
        return b"".join((head, open_session, state.tobytes()))

    @classmethod
    def unpack(cls, blob: bytes) -> UserRecord:
        if len(blob) < _USER.size or blob[:4] != USER_MAGIC:
            raise RecordError(f"not a user record ({len(blob)} bytes, starts {blob[:4]!r})")
        _, key, updated, n_sessions, n_state, n_open = _USER.unpack_from(blob)
        expected = _USER.size + n_open + 4 * n_state
        if len(blob) != expected:
            raise RecordError(f"user record is {len(blob)} bytes, its header says {expected}")
        pos = _USER.size
        open_session = blob[pos:pos + n_open].decode("utf-8") if n_open else None
        state = np.frombuffer(blob, dtype="<f4", count=n_state,
                              offset=pos + n_open).astype(np.float32)
        return cls(state, open_session, n_sessions, key, updated)
