"""One retrain (or rollback) at a time per loop root: an exclusive ``flock`` on a file.

The kernel drops the lock when its holder exits, however it ends (kill -9 included), so a
crashed retrain never blocks the next one. The file records the holder for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sessionrec.errors import SessionRecError

LOCK_FILE = "retrain.lock"


class LoopBusy(SessionRecError):
    """Another retrain or rollback holds the loop's lock."""


@contextlib.contextmanager
def loop_lock(root: Path, what: str) -> Iterator[None]:
    """Hold ``root/retrain.lock`` for the block; :class:`LoopBusy` if someone else holds it."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8").strip() or "unknown"
            raise LoopBusy(f"another retrain or rollback holds {path} ({holder}); this {what} "
                           "did nothing. Wait for it to finish (the lock is released when "
                           "its process ends, even when killed)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{what} pid {os.getpid()} since {datetime.now(UTC).isoformat()}\n"
                 .encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
