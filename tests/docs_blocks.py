"""The executable-README convention: find the shell blocks of a Markdown page and their markers.

A fenced block whose language is ``bash``, ``sh`` or ``shell`` is an example that must run on a
fresh clone without ``../shared``. An HTML comment on the line(s) directly above the opening
fence changes that (invisible when the page is rendered)::

    <!-- readme-test: needs yoochoose-100k -->        the block reads ../shared/data/yoochoose-100k
    <!-- readme-test: skip REASON -->                 never run (REASON is required)
    <!-- readme-test: background 8000 -->             a server: started in the background, ready
                                                      when 127.0.0.1:8000 accepts connections,
                                                      stopped when the page ends
    <!-- readme-test: env NAME=VALUE ... -->          extra environment for the block
    <!-- readme-test: timeout 120 -->                 seconds before the block counts as failed

Several directives can share one comment, separated by ``;`` (``skip`` last: its reason is
the rest of the comment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell"})
DIRECTIVES = ("needs", "skip", "background", "env", "timeout")
DEFAULT_TIMEOUT_S = 900.0  # a guard against hangs, not a speed check: shared CI runners are slow

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*readme-test:(?P<body>.*?)-->\s*$")
_DATASET = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


class MarkerError(ValueError):
    """A ``readme-test`` marker that does not follow the convention (names page and line)."""


@dataclass(frozen=True)
class Block:
    """One shell block: where it is, its text and what its marker asks for."""

    page: str
    line: int  # 1-based line of the opening fence
    text: str
    needs: tuple[str, ...] = ()
    skip: str | None = None
    background_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return not self.needs and self.skip is None


def parse_marker(body: str, where: str) -> dict:
    """The directives of one marker comment, e.g. ``needs taobao; timeout 60``."""
    out: dict = {}
    parts = [p.strip() for p in body.split(";")]
    for n, part in enumerate(parts):
        if not part:
            continue
        name, _, arg = part.partition(" ")
        arg = arg.strip()
        if name == "skip":  # the reason is the rest of the comment, ';' included
            arg = "; ".join([arg, *parts[n + 1:]]).strip("; ")
        if name not in DIRECTIVES:
            raise MarkerError(f"{where}: unknown readme-test directive {name!r} "
                              f"(valid: {', '.join(DIRECTIVES)})")
        if name == "needs":
            names = tuple(n for n in re.split(r"[\s,]+", arg) if n)
            bad = [n for n in names if not _DATASET.match(n)]
            if not names or bad:
                raise MarkerError(f"{where}: 'needs' takes dataset folder names of "
                                  f"../shared/data, got {arg!r}")
            out["needs"] = out.get("needs", ()) + names
        elif name == "skip":
            if not arg:
                raise MarkerError(f"{where}: 'skip' needs a reason, e.g. "
                                  "'skip needs a GPU'")
            out["skip"] = arg
            break
        elif name == "background":
            if not arg.isdigit():
                raise MarkerError(f"{where}: 'background' takes the port the server "
                                  f"listens on, got {arg!r}")
            out["background_port"] = int(arg)
        elif name == "env":
            pairs = arg.split()
            bad = [p for p in pairs if not _ENV.match(p)]
            if not pairs or bad:
                raise MarkerError(f"{where}: 'env' takes NAME=VALUE pairs, got {arg!r}")
            out.setdefault("env", {}).update(p.split("=", 1) for p in pairs)
        else:
            try:
                out["timeout_s"] = float(arg)
            except ValueError:
                raise MarkerError(f"{where}: 'timeout' takes seconds, got {arg!r}") from None
    return out


def shell_blocks(text: str, page: str) -> list[Block]:
    """Every ``bash``/``sh``/``shell`` fenced block of a Markdown page, with its marker."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if _MARKER.match(lines[i]) and not _marker_followed_by_fence(lines, i):
                raise MarkerError(f"{page}:{i + 1}: a readme-test marker must be directly "
                                  "above a ```bash block")
            i += 1
            continue
        fence = m.group("fence")
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if m.group("lang").lower() in SHELL_LANGUAGES:
            opts: dict = {}
            j = i - 1
            while j >= 0 and (mm := _MARKER.match(lines[j])):
                for key, value in parse_marker(mm.group("body"), f"{page}:{j + 1}").items():
                    if key == "needs":
                        value = opts.get("needs", ()) + value
                    elif key == "env":
                        value = {**opts.get("env", {}), **value}
                    opts[key] = value
                j -= 1
            body = "\n".join(lines[i + 1:end]) + "\n"
            blocks.append(Block(page=page, line=i + 1, text=body, **opts))
        i = end + 1
    return blocks


def _marker_followed_by_fence(lines: list[str], i: int) -> bool:
    j = i + 1
    while j < len(lines) and _MARKER.match(lines[j]):
        j += 1
    return j < len(lines) and bool(_FENCE.match(lines[j]))


def pages_with_commands(root: Path) -> list[Path]:
    """README.md and every docs/ page: the pages whose shell blocks are tested."""
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]
