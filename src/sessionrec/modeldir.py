"""Where a saved model and its item vocabulary are: a run directory (``RUN_DIR/model/``) or a
model directory itself, and the vocabulary it was trained on, tried in order:

1. ``vocab`` as given (an ``items.parquet`` or a prepared data directory);
2. ``RUN_DIR/data/items.parquet`` (a run that prepared its own data);
3. the prepared directory named by ``data.prepared`` in ``RUN_DIR/config.toml``;
4. ``RUN_DIR/../../data/items.parquet`` (the ``sessionrec quickstart`` / ``evaluate`` layout).

A candidate is only taken when its fingerprint matches the one saved with the model. Serving
(:mod:`sessionrec.serving.bundle`), experiments and the console all find models this way; it
lives outside ``serving/`` so that they need not import the serving package.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from sessionrec.errors import SessionRecError
from sessionrec.models.base import CONFIG_FILE
from sessionrec.vocab import ITEMS_FILE, Vocabulary


def model_directory(path: str | Path) -> tuple[Path, Path | None]:
    """(model directory, run directory or None) for a run or model directory."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        run = path.parent if path.name == "model" else None
        return path, run
    if (path / "model" / CONFIG_FILE).is_file():
        return path / "model", path
    raise SessionRecError(f"model: no saved model in {path} (neither {path / CONFIG_FILE} nor "
                          f"{path / 'model' / CONFIG_FILE} exists); give a run directory "
                          "(sessionrec train --out) or its model/ folder")


def saved_vocab(model_dir: Path) -> str:
    config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    return str(config.get("vocab", ""))


def saved_prepared(run_dir: Path) -> str:
    """``data.prepared`` of the run's saved ``config.toml`` ("" if it has none or cannot be read).

    The saved config is an output of the run, read as plain TOML: a run written by an older
    version may hold keys the current :class:`~sessionrec.runs.RunConfig` no longer takes.
    """
    config = run_dir / "config.toml"
    if not config.is_file():
        return ""
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8")).get("data", {})
    except tomllib.TOMLDecodeError:
        return ""
    prepared = data.get("prepared", "") if isinstance(data, dict) else ""
    return prepared if isinstance(prepared, str) else ""


def vocab_candidates(run_dir: Path | None) -> list[Path]:
    """Where a run's vocabulary may lie (see the module docstring), in order."""
    if run_dir is None:
        return []
    out = [run_dir / "data" / ITEMS_FILE]
    prepared = saved_prepared(run_dir)
    if prepared:
        out += [Path(prepared) / ITEMS_FILE, run_dir / prepared / ITEMS_FILE]
    out.append(run_dir.parent.parent / "data" / ITEMS_FILE)
    return out


def find_vocab(model_dir: Path, run_dir: Path | None, vocab: str | Path | None) -> Vocabulary:
    """The vocabulary the model was trained on (see the module docstring)."""
    expected = saved_vocab(model_dir)
    if vocab is not None:
        found = Vocabulary.read(vocab)
        if expected and found.fingerprint != expected:
            raise SessionRecError(
                f"vocab: {found.path} ({found.fingerprint}) is not the vocabulary the model in "
                f"{model_dir} was trained on ({expected}); its item indices would point at "
                "other products")
        return found
    tried = []
    for candidate in vocab_candidates(run_dir):
        if not candidate.is_file():
            tried.append(f"{candidate} (missing)")
            continue
        found = Vocabulary.read(candidate)
        if not expected or found.fingerprint == expected:
            return found
        tried.append(f"{candidate} (another vocabulary: {found.fingerprint})")
    raise SessionRecError(
        f"vocab: cannot find the item vocabulary of the model in {model_dir} (fingerprint "
        f"{expected or 'unknown'}); tried: {'; '.join(tried) or 'nothing (not a run directory)'}. "
        "Pass --vocab with the prepared data directory (or its items.parquet) it was trained on")
