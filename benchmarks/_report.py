"""What every benchmark shares: the machine line, load average, peak RSS, repeated timings,
and writing its figures into docs/benchmarks.md between its own markers."""

from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n\nEvery section is written by the script it names; do not edit by hand.\n"


def machine() -> str:
    """One line describing where the figure was measured."""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, measured {datetime.now(UTC):%Y-%m-%d}")


def load_average(sep: str = " / ") -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"1.2 / 0.9 / 0.7"``."""
    return sep.join(f"{x:.1f}" for x in os.getloadavg())


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timings(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


@contextmanager
def commit_checkout(commit: str) -> Iterator[Path]:
    """The repository at ``commit``, checked out into a temporary git worktree (removed after):
    for benchmarks that run an older commit's code beside this tree's."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(where), commit],
                       check=True, cwd=ROOT, capture_output=True)
        try:
            yield where
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT,
                           capture_output=True)


def update_section(name: str, body: str, doc: Path = DOC, title: str = TITLE) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` (or append).

    A new document starts with ``title``.
    """
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text(encoding="utf-8") if doc.exists() else title
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->",
                         re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(doc)
