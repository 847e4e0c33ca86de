"""Pictures of a product space (seed 004: "PCA pictures show the space makes sense").

* ``pca-category.png`` / ``pca-brand.png``: the first two principal components of the unit
  product vectors (at most ``max_points`` products, a seeded sample), coloured by the ten most
  frequent categories / brands; the rest grey. Cold-start products are drawn as crosses.
* ``neighbours.png``: a few products (the most frequent category's first products, then
  others) each with its nearest neighbours by cosine, labelled with id, category and brand.

PCA is numpy's SVD of the centred vectors. Written with matplotlib's Agg backend, each file to
a temporary name then renamed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import polars as pl

from sessionrec.embeddings.similar import similar_products
from sessionrec.embeddings.store import EmbeddingStore

log = logging.getLogger(__name__)
TOP = 10


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, 2], explained variance ratio of the two components) of unit rows."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centred = unit - unit.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(float((s**2).sum()), 1e-12)
    return centred @ vt[:2].T, var[:2]


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_pca(store: EmbeddingStore, out_dir: Path, column: str, *, max_points: int = 20_000,
             seed: int = 0) -> Path | None:
    """PCA scatter coloured by ``column``'s most frequent values; None without that column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if store.metadata is None or column not in store.metadata.columns:
        log.info("no %s column in the store: no PCA picture by %s", column, column)
        return None
    rng = np.random.default_rng(seed)
    rows = np.arange(len(store)) if len(store) <= max_points else np.sort(
        rng.choice(len(store), max_points, replace=False))
    points, var = pca_2d(store.vectors[rows])
    values = store.metadata[column].cast(pl.String).gather(rows)
    top = values.drop_nulls().value_counts(sort=True).head(TOP)[column].to_list()
    cold = (store.metadata["cold_start"].gather(rows).to_numpy()
            if "cold_start" in store.metadata.columns else np.zeros(len(rows), dtype=bool))
    fig, ax = plt.subplots(figsize=(8, 6.5))
    other = ~values.is_in(top).fill_null(False).to_numpy()
    ax.scatter(points[other, 0], points[other, 1], s=3, c="lightgrey", label="other")
    cmap = plt.get_cmap("tab10")
    for j, v in enumerate(top):
        m = (values == v).fill_null(False).to_numpy()
        ax.scatter(points[m & ~cold, 0], points[m & ~cold, 1], s=5, color=cmap(j),
                   label=str(v)[:30])
        ax.scatter(points[m & cold, 0], points[m & cold, 1], s=30, marker="x", color=cmap(j))
    ax.set_xlabel(f"PC1 ({var[0]:.1%})")
    ax.set_ylabel(f"PC2 ({var[1]:.1%})")
    ax.set_title(f"{len(rows):,} of {len(store):,} products by {column} "
                 f"({store.meta.get('method', '?')}; x = cold start)")
    ax.legend(markerscale=3, fontsize=7, loc="best")
    path = _save(fig, out_dir / f"pca-{column}.png")
    plt.close(fig)
    return path


def _label(row: dict) -> str:
    parts = [str(row["product_id"])]
    parts += [str(row[c])[:24] for c in ("category", "brand") if c in row and row[c] is not None]
    if row.get("cold_start"):
        parts.append("cold start")
    return " | ".join(parts)


def plot_neighbours(store: EmbeddingStore, out_dir: Path, *, n_products: int = 4, k: int = 6,
                    seed: int = 0) -> Path:
    """A table picture of ``n_products`` products and their ``k`` nearest neighbours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(store), min(n_products, len(store)), replace=False)
    ids = store.product_ids.gather(picks).to_list()
    table = similar_products(store, ids, k=k)
    meta = store.metadata if store.metadata is not None else pl.DataFrame()
    fig, ax = plt.subplots(figsize=(13, 0.5 + 0.32 * len(ids) * (k + 2)))
    ax.axis("off")
    y = 1.0
    step = 1.0 / (len(ids) * (k + 2))
    for pick, pid in zip(picks, ids, strict=True):
        row = {"product_id": pid, **(meta.row(int(pick), named=True) if meta.width else {})}
        ax.text(0.0, y, _label(row), fontsize=10, weight="bold", va="top")
        y -= step
        for nb in table.filter(pl.col("query") == pid).iter_rows(named=True):
            ax.text(0.03, y, f"{nb['rank']:>2}. cos {nb['cosine']:.3f}   {_label(nb)}",
                    fontsize=9, va="top", family="monospace")
            y -= step
        y -= step
    ax.set_title(f"nearest neighbours by cosine ({store.meta.get('method', '?')})")
    path = _save(fig, out_dir / "neighbours.png")
    plt.close(fig)
    return path


def write_plots(store: EmbeddingStore, out_dir: Path, *, seed: int = 0) -> list[Path]:
    """Every picture of the module docstring that the store's columns allow."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_pca(store, out_dir, c, seed=seed) for c in ("category", "brand")]
    paths.append(plot_neighbours(store, out_dir, seed=seed))
    return [p for p in paths if p is not None]
