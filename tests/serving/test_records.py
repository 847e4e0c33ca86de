"""Binary session and user records: exact layout, round trip, corrupt input."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sessionrec.serving.records import RecordError, SessionRecord, UserRecord


def session(**kw) -> SessionRecord:
    base = {"state": np.array([0.5, -1.0, 2.0], dtype=np.float32),
            "seen": np.array([3, 1], dtype=np.int32), "last_item": 1, "n_events": 4,
            "user_id": "ü7", "model_key": b"abcdefgh", "created_at": 100.0,
            "updated_at": 160.5, "last_event_at": 159.0}
    base.update(kw)
    return SessionRecord(**base)


def test_session_record_layout_is_header_user_state_seen():
    blob = session().pack()
    # header: 4 + 8 + 3 * 8 + 4 + 4 + 4 + 4 + 2 = 54 bytes; "ü7" is 3 UTF-8 bytes
    assert len(blob) == 54 + 3 + 3 * 4 + 2 * 4
    assert blob[:4] == b"SRS1" and blob[4:12] == b"abcdefgh"
    assert struct.unpack_from("<ddd", blob, 12) == (100.0, 160.5, 159.0)
    assert struct.unpack_from("<IiIIH", blob, 36) == (4, 1, 3, 2, 3)
    assert blob[54:57].decode() == "ü7"
    assert np.frombuffer(blob, "<f4", 3, 57).tolist() == [0.5, -1.0, 2.0]
    assert np.frombuffer(blob, "<i4", 2, 69).tolist() == [3, 1]


@pytest.mark.parametrize("record", [session(), session(user_id=None, seen=np.zeros(0, "i4"))])
def test_session_record_round_trip(record):
    back = SessionRecord.unpack(record.pack())
    assert back.state.dtype == np.float32 and back.seen.dtype == np.int32
    np.testing.assert_array_equal(back.state, record.state)
    np.testing.assert_array_equal(back.seen, record.seen)
    assert (back.last_item, back.n_events, back.user_id, back.model_key) == (
        record.last_item, record.n_events, record.user_id, record.model_key)
    assert (back.created_at, back.updated_at, back.last_event_at) == (100.0, 160.5, 159.0)


def test_user_record_round_trip():
    record = UserRecord(np.array([1.5, -2.0], dtype=np.float32), "s-9", 3, b"12345678", 42.0)
    blob = record.pack()
    assert len(blob) == 30 + 3 + 8  # header 4 + 8 + 8 + 4 + 4 + 2
    back = UserRecord.unpack(blob)
    assert back.state.tolist() == [1.5, -2.0]
    assert (back.open_session, back.n_sessions, back.model_key, back.updated_at) == (
        "s-9", 3, b"12345678", 42.0)
    none_open = UserRecord(np.zeros(2, np.float32), None, 0, b"12345678", 1.0)
    assert UserRecord.unpack(none_open.pack()).open_session is None


@pytest.mark.parametrize(("cls", "blob", "message"), [
    (SessionRecord, b"", "not a session record"),
    (SessionRecord, b"XXXX" + b"\0" * 60, "not a session record"),
    (SessionRecord, session().pack()[:-1], "header says"),
    (SessionRecord, session().pack() + b"\0", "header says"),
    (UserRecord, session().pack(), "not a user record"),
    (UserRecord, UserRecord(np.zeros(2, np.float32), None, 0, b"k" * 8, 0.0).pack()[:-2],
     "header says"),
])
def test_corrupt_records_are_refused(cls, blob, message):
    with pytest.raises(RecordError, match=message):
        cls.unpack(blob)
