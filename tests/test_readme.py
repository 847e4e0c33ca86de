"""Every shell block of README.md and docs/*.md runs on a fresh clone (or is marked why not).

The convention is in ``tests/docs_blocks.py`` and at the top of the README's "Contributing"
section. The lead's check: ``python -m pytest tests/test_readme.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs_blocks import (
    Block,
    MarkerError,
    pages_with_commands,
    parse_marker,
    shell_blocks,
)
from tests.docs_runner import BlockFailed, fresh_clone, run_block, run_page

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def page_blocks(page: Path) -> list[Block]:
    return shell_blocks(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))


def known_datasets() -> set[str] | None:
    """Folder names in ../shared/data, when it is here to check `needs` against."""
    if not SHARED_DATA.is_dir():
        return None
    return {p.name for p in SHARED_DATA.iterdir() if p.is_dir()}


# -- the convention itself -------------------------------------------------------------------
def test_markers_are_parsed() -> None:
    text = ("intro\n"
            "<!-- readme-test: needs yoochoose-100k, taobao; timeout 60 -->\n"
            "```bash\nsessionrec prepare --source yoochoose --out d/\n```\n"
            "```python\nprint(1)\n```\n"
            "<!-- readme-test: background 8123 -->\n"
            "<!-- readme-test: env SESSIONREC_X=1 A=b -->\n"
            "```sh\nsessionrec serve\n```\n"
            "```bash\necho hi\n```\n")
    a, b, c = shell_blocks(text, "P.md")
    assert (a.line, a.needs, a.timeout_s, a.runnable) == (3, ("yoochoose-100k", "taobao"),
                                                          60.0, False)
    assert a.text == "sessionrec prepare --source yoochoose --out d/\n"
    assert (b.line, b.background_port, b.env, b.runnable) == (11, 8123,
                                                              {"SESSIONREC_X": "1", "A": "b"},
                                                              True)
    assert (c.line, c.needs, c.skip, c.runnable) == (14, (), None, True)


@pytest.mark.parametrize("body, message", [
    ("skip", "needs a reason"),
    ("needs", "dataset folder names"),
    ("background http", "port"),
    ("env lower=1", "NAME=VALUE"),
    ("timeout soon", "seconds"),
    ("need taobao", "unknown readme-test directive 'need'"),
])
def test_bad_markers_are_refused(body: str, message: str) -> None:
    with pytest.raises(MarkerError, match=message):
        parse_marker(body, "P.md:1")


def test_a_skip_reason_keeps_its_semicolons() -> None:
    assert parse_marker("timeout 5; skip slow; needs a GPU", "P.md:1") == {
        "timeout_s": 5.0, "skip": "slow; needs a GPU"}


def test_a_marker_must_sit_on_a_block() -> None:
    with pytest.raises(MarkerError, match=r"P\.md:1: a readme-test marker must be directly above"):
        shell_blocks("<!-- readme-test: skip x -->\n\ntext\n```bash\necho\n```\n", "P.md")


def test_a_failing_block_names_its_line(tmp_path: Path) -> None:
    block = Block(page="P.md", line=10, text="echo ok\nfalse\necho never\n")
    with pytest.raises(BlockFailed, match=r"P.md:12 \(block starting at line 10\).*status 1"):
        run_block(block, tmp_path)
    slow = Block(page="P.md", line=3, text="sleep 5\n", timeout_s=0.5)
    with pytest.raises(BlockFailed, match=r"P.md:3: still running after 0 s"):
        run_block(slow, tmp_path)


# -- the pages -------------------------------------------------------------------------------
@pytest.mark.parametrize("page", pages_with_commands(ROOT), ids=lambda p: p.name)
def test_page_markers_are_valid(page: Path) -> None:
    """Parsing fails on a malformed marker; `needs` names must be ../shared/data folders."""
    known = known_datasets()
    for block in page_blocks(page):
        if known is not None:
            missing = sorted(set(block.needs) - known)
            assert not missing, (f"{block.where}: needs {missing}, not a folder of "
                                 f"{SHARED_DATA} (valid: {', '.join(sorted(known))})")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in pages_with_commands(ROOT)
                                  if any(b.runnable for b in page_blocks(p))],
                         ids=lambda p: p.name)
def test_page_runs_on_a_fresh_clone(page: Path, tmp_path: Path) -> None:
    clone = fresh_clone(ROOT, tmp_path / "clone")
    assert not (clone.parent / "shared").exists() and not (clone.parent.parent / "shared").exists()
    ran = run_page(page_blocks(page), clone)
    assert ran
