"""Pictures of a product space (seed 004: "PCA pictures show the space makes sense").

* ``pca-category.png`` / ``pca-brand.png``: the first two principal components of the unit
  product vectors (at most ``max_points`` products, a seeded sample), coloured by the ten most
  frequent categories / brands; the rest grey. Cold-start products are drawn as crosses.
* ``tsne-category.png`` / ``tsne-brand.png`` (``tsne=True``): the same, as scikit-learn's
  t-SNE map (Barnes-Hut, cosine distances, PCA initialisation; at most ``tsne_points``
  products, since its cost grows with n log n on one core). scikit-learn is the optional
  extra ``sessionrec[plots]``; asking for t-SNE without it is a :class:`ConfigError` saying
  so. UMAP is not offered: umap-learn and pynndescent would be two more packages for one picture.
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
from sessionrec.errors import ConfigError

log = logging.getLogger(__name__)
TOP = 10


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, 2], explained variance ratio of the two components) of unit rows."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centred = unit - unit.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(float((s**2).sum()), 1e-12)
    return centred @ vt[:2].T, var[:2]


def tsne_2d(vectors: np.ndarray, *, seed: int = 0, perplexity: float = 30.0,
            threads: int = 1) -> np.ndarray:
    """t-SNE points [n, 2] of the rows of ``vectors`` (cosine distances, PCA initialisation;
    the perplexity is lowered to (n - 1) / 3 for small n, as t-SNE needs it below n).

    OpenMP is held to ``threads``: on a loaded machine scikit-learn's default of one thread
    per core made a 60-point map take 55 s instead of 0.9 s (measured, load 24 on 2 cores).
    """
    try:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise ConfigError("t-SNE pictures need scikit-learn, an optional extra: "
                          "pip install 'sessionrec[plots]'") from err
    n = len(vectors)
    if n < 4:
        raise ConfigError(f"a t-SNE map needs at least 4 products, the store has {n}")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), metric="cosine",
                init="pca", random_state=seed)
    with threadpool_limits(threads):
        return tsne.fit_transform(unit.astype(np.float32))


def _sample(n: int, max_points: int, seed: int) -> np.ndarray:
    """All rows, or a seeded sorted sample of ``max_points`` of them."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_pca(store: EmbeddingStore, out_dir: Path, column: str, *, max_points: int = 20_000,
             seed: int = 0) -> Path | None:
    """PCA scatter coloured by ``column``'s most frequent values; None without that column."""
    if not _has(store, column):
        return None
    rows = _sample(len(store), max_points, seed)
    points, var = pca_2d(store.vectors[rows])
    return _scatter(store, rows, points, column, out_dir / f"pca-{column}.png",
                    (f"PC1 ({var[0]:.1%})", f"PC2 ({var[1]:.1%})"), "PCA")


def plot_tsne(store: EmbeddingStore, out_dir: Path, columns: tuple[str, ...], *,
              max_points: int = 5_000, seed: int = 0) -> list[Path]:
    """One t-SNE map (computed once) coloured by each of ``columns`` the store has."""
    columns = tuple(c for c in columns if _has(store, c))
    if not columns:
        return []
    rows = _sample(len(store), max_points, seed)
    points = tsne_2d(store.vectors[rows], seed=seed)
    return [_scatter(store, rows, points, c, out_dir / f"tsne-{c}.png",
                     ("t-SNE 1", "t-SNE 2"), "t-SNE") for c in columns]


def _has(store: EmbeddingStore, column: str) -> bool:
    if store.metadata is None or column not in store.metadata.columns:
        log.info("no %s column in the store: no picture by %s", column, column)
        return False
    return True


def _scatter(store: EmbeddingStore, rows: np.ndarray, points: np.ndarray, column: str,
             path: Path, axes: tuple[str, str], how: str) -> Path:
    """``points`` of the store's ``rows`` coloured by the ten most frequent ``column`` values
    (the rest grey), cold-start products as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"{how}: {len(rows):,} of {len(store):,} products by {column} "
                 f"({store.meta.get('method', '?')}; x = cold start)")
    ax.legend(markerscale=3, fontsize=7, loc="best")
    _save(fig, path)
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


def write_plots(store: EmbeddingStore, out_dir: Path, *, seed: int = 0,
                tsne: bool = False) -> list[Path]:
    """Every picture of the module docstring that the store's columns allow (t-SNE maps only
    with ``tsne``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_pca(store, out_dir, c, seed=seed) for c in ("category", "brand")]
    if tsne:
        paths += plot_tsne(store, out_dir, ("category", "brand"), seed=seed)
    paths.append(plot_neighbours(store, out_dir, seed=seed))
    return [p for p in paths if p is not None]
