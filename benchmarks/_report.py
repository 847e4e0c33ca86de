"""Write a benchmark's figures into docs/benchmarks.md between its own markers."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n\nEvery section is written by the script it names; do not edit by hand.\n"


def machine() -> str:
    """One line describing where the figure was measured."""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, measured {datetime.now(UTC):%Y-%m-%d}")


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
