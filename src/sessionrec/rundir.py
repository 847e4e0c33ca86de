"""A run directory's final outputs written as one unit: all of the new run, or the old one.

:func:`staged_run` hands out an empty staging directory beside the run directory
(``.NAME.partial-XXXX``); the outputs are written there, and only when all of them are done
the staging directory takes the run directory's place. Entries of the old run directory that
are not outputs (``checkpoints/``, the run's prepared ``data/``) move into the new one first.
The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux; where that is missing, two renames
(a kill between them leaves no run directory, never a mixed one: the complete new run waits
in ``.NAME.partial-*``). A kill at any moment leaves either the old outputs or the new ones;
leftover staging directories are removed by the next write.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

OUTPUTS = ("config.toml", "metrics.json", "ranks.parquet", "model")  # replaced as a unit
PARTIAL = ".partial-"
OLD = ".old-"
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _libc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    return lib if hasattr(lib, "renameat2") else None


_LIBC = _libc() if os.name == "posix" else None


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step; False where the system cannot (nothing changed)."""
    if _LIBC is None:
        return False
    rc = _LIBC.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return rc == 0


def leftovers(run_dir: Path) -> list[Path]:
    """Staging and old directories of ``run_dir`` that a killed write left behind."""
    parent = run_dir.parent
    if not parent.is_dir():
        return []
    prefixes = (f".{run_dir.name}{PARTIAL}", f".{run_dir.name}{OLD}")
    return sorted(p for p in parent.iterdir() if p.name.startswith(prefixes))


def publish(staging: Path, run_dir: Path) -> None:
    """Put the complete ``staging`` directory in the place of ``run_dir`` (module doc)."""
    if not run_dir.exists():
        staging.rename(run_dir)
        return
    for entry in sorted(run_dir.iterdir()):
        if entry.name not in OUTPUTS and not (staging / entry.name).exists():
            entry.rename(staging / entry.name)  # checkpoints/, data/, ...: carried over
    if exchange(staging, run_dir):
        shutil.rmtree(staging)  # it now holds the old outputs
        return
    old = run_dir.parent / f".{run_dir.name}{OLD}{uuid.uuid4().hex[:8]}"
    run_dir.rename(old)
    staging.rename(run_dir)
    shutil.rmtree(old)


@contextlib.contextmanager
def staged_run(run_dir: str | Path) -> Iterator[Path]:
    """A staging directory for the outputs of ``run_dir``, published when the block ends
    without an error (removed when it raises)."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in leftovers(run_dir):
        log.warning("removing %s, left by an interrupted write of %s", stale, run_dir)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}{PARTIAL}", dir=run_dir.parent))
    try:
        yield staging
        publish(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
