"""Long-tail histograms of a prepared dataset (PNG, matplotlib with the Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl


def _loglog_hist(ax, values: np.ndarray, title: str, xlabel: str) -> None:
    values = values[values > 0]
    bins = np.unique(np.logspace(0, np.log10(max(values.max(), 1)) + 0.01, 40).astype(int))
    ax.hist(values, bins=bins, color="#3a6ea5", edgecolor="white", linewidth=0.3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")


def _write_histogram(values: np.ndarray, path: Path, title: str, xlabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    _loglog_hist(ax, values, title.strip(), xlabel)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def long_tail_plots(events: pl.DataFrame, out_dir: Path, name: str = "") -> list[Path]:
    """Write events-per-item and sessions-per-user (if users exist) histograms; return paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_item = events.group_by("item_id").len()["len"].to_numpy()
    written = [_write_histogram(per_item, out_dir / "events_per_item.png",
                                f"{name} events per product", "events")]
    if "user_id" in events.columns and events["user_id"].null_count() < len(events):
        per_user = (events.drop_nulls("user_id").group_by("user_id")
                    .agg(pl.col("session_id").n_unique())["session_id"].to_numpy())
        written.append(_write_histogram(per_user, out_dir / "sessions_per_user.png",
                                        f"{name} sessions per user", "sessions"))
    return written
