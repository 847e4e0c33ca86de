"""The embedding store: round trip, alignment to a vocabulary, missing ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from sessionrec.embeddings.store import (
    EmbeddingStore,
    load_item_vectors,
    read_store,
    write_store,
)
from sessionrec.errors import ConfigError, DataError

VECTORS = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], dtype=np.float32)


def store(ids: list | None = None, **kw) -> EmbeddingStore:
    return EmbeddingStore(pl.Series(ids or [7, 3, 9]), VECTORS,
                          {"method": "metaprod2vec", "params": {"dim": 2}}, **kw)


def test_round_trip_keeps_ids_vectors_metadata(tmp_path: Path) -> None:
    meta = pl.DataFrame({"brand": ["a", None, "b"], "category": ["x", "y", "x"],
                         "price": [1.0, 2.0, None]})
    path = write_store(tmp_path / "e.parquet", store(metadata=meta))
    back = read_store(path)
    assert back.product_ids.to_list() == [7, 3, 9]
    np.testing.assert_array_equal(back.vectors, VECTORS)
    assert back.dim == 2 and back.meta == {"method": "metaprod2vec", "params": {"dim": 2}}
    assert back.metadata is not None and back.metadata.equals(meta)
    assert [p.name for p in tmp_path.iterdir()] == ["e.parquet"]  # no temporary file left


def test_string_ids_round_trip(tmp_path: Path) -> None:
    back = read_store(write_store(tmp_path / "e.parquet", store(["a", "b", "c"])))
    assert back.product_ids.to_list() == ["a", "b", "c"] and back.metadata is None


def test_an_existing_store_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = write_store(tmp_path / "e.parquet", store())
    with pytest.raises(DataError, match="already exists"):
        write_store(path, store([1, 2, 3]))
    assert read_store(path).product_ids.to_list() == [7, 3, 9]
    write_store(path, store([1, 2, 3]), overwrite=True)
    assert read_store(path).product_ids.to_list() == [1, 2, 3]


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    pl.DataFrame({"product_id": [1]}).write_parquet(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="not an embedding store"):
        read_store(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="does not exist"):
        read_store(tmp_path / "none.parquet")


def test_bad_stores_are_refused() -> None:
    with pytest.raises(DataError, match="occurs more than once"):
        store([7, 3, 7])
    with pytest.raises(DataError, match="one vector per product id"):
        EmbeddingStore(pl.Series([1, 2]), VECTORS)
    bad = VECTORS.copy()
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match="row 2"):
        EmbeddingStore(pl.Series([1, 2, 3]), bad)


def test_vectors_follow_the_vocabulary_item_idx() -> None:
    vocab = pl.DataFrame({"item_idx": [1, 0], "item_id": [7, 9]})  # idx 0 is product 9
    got = load_item_vectors(store(), vocab)
    assert got.dtype == torch.float32
    assert got.tolist() == [[3.0, 3.0], [1.0, 0.0]]


def test_missing_ids_are_an_error_naming_how_many(tmp_path: Path) -> None:
    path = write_store(tmp_path / "e.parquet", store())
    vocab = pl.DataFrame({"item_idx": [0, 1, 2, 3], "item_id": [7, 100, 9, 200]})
    with pytest.raises(DataError) as err:
        load_item_vectors(path, vocab)
    text = str(err.value)
    assert "no vector for 2 of 4 vocabulary items (e.g. 100, 200)" in text
    assert "e.parquet" in text and "missing='random'" in text


def test_missing_policies() -> None:
    vocab = pl.DataFrame({"item_idx": [0, 1], "item_id": [3, 100]})
    zero = load_item_vectors(store(), vocab, missing="zero")
    assert zero.tolist() == [[0.0, 2.0], [0.0, 0.0]]
    a = load_item_vectors(store(), vocab, missing="random", seed=1)
    b = load_item_vectors(store(), vocab, missing="random", seed=1)
    assert torch.equal(a, b) and a[0].tolist() == [0.0, 2.0] and bool(a[1].abs().sum() > 0)
    with pytest.raises(ConfigError, match="missing"):
        load_item_vectors(store(), vocab, missing="mean")  # type: ignore[arg-type]


def test_ids_of_another_type_are_matched_as_text() -> None:
    vocab = pl.DataFrame({"item_idx": [0], "item_id": ["9"]})
    assert load_item_vectors(store(), vocab).tolist() == [[3.0, 3.0]]
