"""The loop's promotion history (``ROOT/promotions.json``): a stack of promotions, each with
the model it replaced, so that ``sessionrec rollback`` can put the previous model back.

Each entry: ``{"run": decision run dir, "at": time, "promoted": {model_dir, vocab, tag,
fallback}, "previous": {model_dir, vocab, tag, fallback}}``. The file is replaced atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sessionrec.data.io import atomic_write_text
from sessionrec.errors import DataError

HISTORY_FILE = "promotions.json"


def read_history(root: Path) -> list[dict[str, Any]]:
    """The promotions, oldest first ([] before the first one)."""
    path = root / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        stack = json.loads(path.read_text(encoding="utf-8"))["stack"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"the promotion history is damaged ({err!r}); fix or remove it "
                        "(a rollback then needs a manual /admin/reload)", path=str(path)) from err
    return list(stack)


def write_history(root: Path, stack: list[dict[str, Any]]) -> None:
    atomic_write_text(root / HISTORY_FILE, json.dumps({"stack": stack}, indent=2) + "\n")


def served(info: dict[str, Any], fallback: str | None) -> dict[str, Any]:
    """What the history keeps of a served model (``/admin/model`` or ``/admin/reload``)."""
    return {"model_dir": info["model_dir"], "vocab": info["vocab"], "tag": info["tag"],
            "model": info["model"], "fallback": fallback}


def fallback_of(stack: list[dict[str, Any]], model_dir: str) -> str | None:
    """The fallback a model was promoted with (None for a model the loop did not promote)."""
    for entry in reversed(stack):
        if entry["promoted"]["model_dir"] == model_dir:
            return entry["promoted"]["fallback"]
    return None
