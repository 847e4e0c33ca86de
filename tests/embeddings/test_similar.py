"""Similar products: exact cosine kNN, never the product itself, best first."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.embeddings.similar import cosine_knn, similar_products
from sessionrec.embeddings.store import EmbeddingStore
from sessionrec.errors import ConfigError, DataError

# angles 0, 10, 45, 90, 180 degrees (lengths differ: cosine ignores them)
ANGLES = np.deg2rad([0.0, 10.0, 45.0, 90.0, 180.0])
VECTORS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1) * np.array([[1], [2], [3], [1], [5]])


def test_neighbours_by_hand() -> None:
    rows, cos = cosine_knn(VECTORS, [0, 3], 3)
    # from 0 degrees: 10 (cos .985), 45 (.707), 90 (0); from 90: 45 (.707), 10 (.174), 0 (0)
    assert rows.tolist() == [[1, 2, 3], [2, 1, 0]]
    np.testing.assert_allclose(cos.numpy(), [[np.cos(np.deg2rad(10)), np.sqrt(0.5), 0.0],
                                             [np.sqrt(0.5), np.cos(np.deg2rad(80)), 0.0]],
                               atol=1e-6)


def test_self_is_excluded_and_k_is_clipped() -> None:
    rows, cos = cosine_knn(VECTORS, [4], 10)
    assert rows.shape == (1, 4) and 4 not in rows[0].tolist()
    assert cos[0].tolist() == sorted(cos[0].tolist(), reverse=True)
    rows, _ = cosine_knn(VECTORS, [4], 1, exclude_self=False)
    assert rows.tolist() == [[4]]


def test_batches_do_not_change_the_answer() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 8))
    q = np.arange(50)
    a = cosine_knn(v, q, 5, batch_size=7)
    b = cosine_knn(v, q, 5, batch_size=1024)
    assert a[0].tolist() == b[0].tolist()
    assert all(row[0] != i for i, row in enumerate(a[0].tolist()))
    assert bool((a[1][:, :-1] >= a[1][:, 1:]).all())


def test_equal_cosines_are_ordered_by_row() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
    rows, _ = cosine_knn(v, [1], 3)
    assert rows.tolist() == [[2, 3, 0]]


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        cosine_knn(VECTORS, [0], 0)
    with pytest.raises(DataError, match=r"\[0, 5\)"):
        cosine_knn(VECTORS, [5], 2)


def test_similar_products_table() -> None:
    store = EmbeddingStore(pl.Series([10, 11, 12, 13, 14]), VECTORS.astype(np.float32),
                           metadata=pl.DataFrame({"brand": list("abcde")}))
    table = similar_products(store, ["13"], k=2)  # text ids are parsed for an integer store
    assert table.columns == ["query", "rank", "product_id", "cosine", "brand"]
    assert table["query"].to_list() == [13, 13] and table["rank"].to_list() == [1, 2]
    assert table["product_id"].to_list() == [12, 11] and table["brand"].to_list() == ["c", "b"]
    with pytest.raises(DataError, match=r"1 product id\(s\) are not in the embedding store"):
        similar_products(store, [99])
    with pytest.raises(DataError, match="not an integer"):
        similar_products(store, ["x"])
