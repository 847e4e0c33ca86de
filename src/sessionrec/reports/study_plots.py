"""Figures of the four-variant study: a bar plot per metric, and PCA scatter plots of product
embeddings (coloured by product type) and of user states (coloured by each user's most viewed
product type). PNG, matplotlib with the Agg backend, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

OTHER = "other"
UNKNOWN = "unknown"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components of the rows of ``x``: (scores [n, 2], explained
    variance ratio [2]). Fewer than two dimensions or rows pad with zeros."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        return np.zeros((len(x), 2)), np.zeros(2)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    scores = np.zeros((len(x), 2))
    scores[:, :k] = centred @ vt[:k].T
    var = s**2
    ratio = np.zeros(2)
    if var.sum() > 0:
        ratio[:k] = var[:k] / var.sum()
    return scores, ratio


def top_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """``labels`` (object [m]) with all but the ``n`` most frequent replaced by ``other``
    (missing labels become ``unknown``)."""
    labels = np.asarray([UNKNOWN if v is None else str(v) for v in labels], dtype=object)
    values, counts = np.unique(labels[labels != UNKNOWN], return_counts=True)
    keep = set(values[np.argsort(-counts, kind="stable")[:n]])
    return np.asarray([v if v in keep or v == UNKNOWN else OTHER for v in labels], dtype=object)


def bar_plots(summary: dict[str, Any], metrics: list[str], out_dir: Path) -> list[Path]:
    """One bar plot per metric: mean over seeds per variant with ± std error bars."""
    names = list(summary["variants"])
    colours = ["#9bb7d4", "#3a6ea5", "#f2b880", "#c8553d"]
    written = []
    for metric in metrics:
        means = [summary["variants"][v]["metrics"][metric]["mean"] for v in names]
        stds = [summary["variants"][v]["metrics"][metric]["std"] for v in names]
        fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
        ax.bar(range(len(names)), means, yerr=stds, capsize=4,
               color=[colours[i % len(colours)] for i in range(len(names))])
        ax.set_xticks(range(len(names)), [n.replace("-", "\n") for n in names], fontsize=8)
        label = metric.replace("recall", "Recall").replace("mrr", "MRR")
        ax.set_ylabel(label)
        ax.set_title(f"{summary['dataset']}: {label} (mean ± std over "
                     f"{len(summary['seeds'])} seeds)", fontsize=9)
        low = min(m - s for m, s in zip(means, stds, strict=True))
        ax.set_ylim(bottom=max(0.0, low - 0.1 * (max(means) - low + 1e-9) - 0.02))
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"{metric.replace('@', '_at_')}.png"))
    return written


def pca_scatter(points: np.ndarray, labels: np.ndarray | None, title: str, path: Path,
                n_labels: int = 8) -> Path:
    """PCA of ``points`` coloured by ``labels`` (the ``n_labels`` most frequent, rest grey)."""
    scores, ratio = pca_2d(points)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    if labels is None:
        ax.scatter(scores[:, 0], scores[:, 1], s=4, alpha=0.5, color="#3a6ea5", linewidths=0)
    else:
        grouped = top_labels(labels, n_labels)
        cmap = plt.get_cmap("tab10")
        named = [v for v in dict.fromkeys(grouped) if v not in (OTHER, UNKNOWN)]
        order = [*sorted(named), OTHER, UNKNOWN]
        for i, value in enumerate(v for v in order if (grouped == v).any()):
            mask = grouped == value
            colour = "#bbbbbb" if value in (OTHER, UNKNOWN) else cmap(i % 10)
            ax.scatter(scores[mask, 0], scores[mask, 1], s=4, alpha=0.6, color=colour,
                       linewidths=0, label=f"{value} ({int(mask.sum())})")
        ax.legend(fontsize=6, markerscale=3, loc="best", frameon=False)
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
