"""A model card: what a served model is, from the files its run wrote.

From the run directory of a lane's model (``RUN_DIR/model`` -> ``RUN_DIR``): the resolved
``config.toml``, ``metrics.json`` (parameters, full-ranking metrics, the training history's
per-epoch loss and validation score), the data ``manifest.json`` beside the vocabulary
(counts, filters, split) and the PNG plots found in the run directory (study and embedding
plots). Metric intervals are 95% session-cluster bootstrap intervals recomputed from the
run's per-prediction ``ranks.parquet`` (:func:`sessionrec.evaluation.significance.
bootstrap_ci`), so they exist for every evaluated run. Missing files are reported as missing.
"""

from __future__ import annotations

import functools
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.evaluation.metrics import metric_values
from sessionrec.evaluation.significance import bootstrap_ci

log = logging.getLogger(__name__)

CARD_METRICS = ("recall@5", "mrr@5", "recall@10", "mrr@10", "ndcg@10", "recall@20", "mrr@20",
                "ndcg@20")
N_BOOT = 500
MAX_PLOTS = 24


def run_directory(model_dir: Path) -> Path:
    return model_dir.parent if model_dir.name == "model" else model_dir


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    if not path.is_file():
        return None, f"{path.name} not found in {path.parent}"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, ValueError) as err:
        return None, f"{path}: unreadable ({err})"


@functools.lru_cache(maxsize=32)
def metric_intervals(ranks_file: str, mtime: float) -> dict[str, dict[str, float]]:
    """``{metric: {estimate, low, high, n}}`` from a run's ranks (cached per file version)."""
    import polars as pl

    ranks = pl.read_parquet(ranks_file, columns=["session", "rank"])
    cluster = ranks["session"].to_numpy()
    r = ranks["rank"].to_numpy().astype(np.float64)
    out = {}
    for m in CARD_METRICS:
        ci = bootstrap_ci(metric_values(m, r), n_boot=N_BOOT, cluster=cluster)
        out[m] = {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n}
    return out


def training_curve(metrics: dict | None) -> list[dict[str, Any]]:
    """Per-epoch rows of the training history in ``metrics.json`` (``train.history`` or
    ``train.fit.history``), each with ``epoch`` and its numbers (loss, validation score)."""
    if not metrics:
        return []
    train = metrics.get("train") or {}
    for holder in (train, train.get("fit") or {}, metrics):
        history = holder.get("history") if isinstance(holder, dict) else None
        if isinstance(history, dict) and history.get("epochs"):
            rows = []
            for i, e in enumerate(history["epochs"]):
                numbers = {k: v for k, v in e.items() if isinstance(v, int | float)
                           and not isinstance(v, bool)}
                rows.append({"epoch": numbers.pop("epoch", i + 1), **numbers})
            return rows
    return []


def plots(run_dir: Path) -> list[str]:
    """PNG files of the run directory (and its plots/ folder), relative names."""
    found = sorted(p.relative_to(run_dir).as_posix() for pattern in ("*.png", "plots/*.png")
                   for p in run_dir.glob(pattern))
    return found[:MAX_PLOTS]


def model_card(bundle) -> dict[str, Any]:
    """Everything the model card page shows for a loaded bundle."""
    run_dir = run_directory(bundle.model_dir)
    card: dict[str, Any] = {"model": bundle.name, "tag": bundle.tag, "run_dir": str(run_dir),
                            "n_items": len(bundle.vocab), "vocab": bundle.vocab.path,
                            "fallback": bundle.fallback.name, "missing": []}
    config = run_dir / "config.toml"
    if config.is_file():
        text = config.read_text(encoding="utf-8")
        card["config_text"] = text
        try:
            card["config"] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            card["missing"].append(f"config.toml: not valid TOML ({err})")
    else:
        card["missing"].append(f"config.toml not found in {run_dir}")
    metrics, why = _read_json(run_dir / "metrics.json")
    if why:
        card["missing"].append(why)
    card["metrics"] = metrics
    manifest, why = _read_json(Path(bundle.vocab.path).parent / "manifest.json")
    if why:
        card["missing"].append(why)
    card["manifest"] = manifest
    ranks = run_dir / "ranks.parquet"
    if ranks.is_file():
        try:
            card["intervals"] = metric_intervals(str(ranks), ranks.stat().st_mtime)
        except Exception as err:
            card["missing"].append(f"ranks.parquet: no intervals ({err})")
    else:
        card["missing"].append(f"ranks.parquet not found in {run_dir}: no intervals")
    card["curve"] = training_curve(metrics)
    card["plots"] = plots(run_dir)
    return card
