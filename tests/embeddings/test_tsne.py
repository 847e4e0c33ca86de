"""t-SNE maps beside the PCA (``embed --plots --tsne``): a map keeps separate clusters apart,
and the pictures are written by category and brand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.embeddings.plots import tsne_2d, write_plots
from sessionrec.embeddings.store import EmbeddingStore
from sessionrec.errors import ConfigError


def clusters(n: int = 20, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors around each of 3 orthogonal directions (labels 0, 1, 2)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3] * 5.0
    labels = np.repeat(np.arange(3), n)
    return (centres[labels] + rng.normal(0, 0.3, (3 * n, dim))).astype(np.float32), labels


def test_tsne_keeps_clusters_apart() -> None:
    vectors, labels = clusters()
    points = tsne_2d(vectors, seed=0)
    assert points.shape == (60, 2)
    # every point's nearest map neighbour (other than itself) has its own label
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).all()
    with pytest.raises(ConfigError, match="at least 4"):
        tsne_2d(vectors[:3])


def test_plots_with_tsne(tmp_path: Path) -> None:
    vectors, labels = clusters(n=10)
    meta = pl.DataFrame({"category": [f"c{x}" for x in labels],
                         "brand": [f"b{x % 2}" for x in range(30)],
                         "cold_start": [False] * 29 + [True]})
    store = EmbeddingStore(pl.Series(range(30)), vectors, {"method": "test"}, meta)
    paths = write_plots(store, tmp_path, tsne=True)
    assert sorted(p.name for p in paths) == ["neighbours.png", "pca-brand.png",
                                             "pca-category.png", "tsne-brand.png",
                                             "tsne-category.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_tsne_needs_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", "--data", str(tmp_path), "--out", str(tmp_path / "e.parquet"),
                 "--tsne"]) != 0
    assert "pass --plots too" in capsys.readouterr().err
