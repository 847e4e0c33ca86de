"""Cold start, ANN and plots through ``sessionrec embed`` / ``similar``; cold-start vectors by
hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.embeddings.ann import index_path
from sessionrec.embeddings.coldstart import catalog_tokens, cold_vectors, fit_projection
from sessionrec.embeddings.metadata import item_metadata_tokens
from sessionrec.embeddings.store import read_store
from sessionrec.errors import DataError

from .test_cli import prepared


def test_cold_vectors_by_hand() -> None:
    tv = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]], dtype=np.float32)
    ids = np.array([[0, 1], [2, -1], [-1, -1]])
    out = cold_vectors(tv, ids, "average")
    np.testing.assert_allclose(out, [[0.5, 1.0], [4.0, 4.0], [0.0, 0.0]])
    # a projection that copies the first field's vector
    w = np.vstack([np.eye(2), np.zeros((2, 2))]).astype(np.float32)
    np.testing.assert_allclose(cold_vectors(tv, ids, "learned", w),
                               [[1.0, 0.0], [4.0, 4.0], [0.0, 0.0]])
    # ridge fit recovers an exact linear map (tiny ridge)
    train_ids = np.array([[0, 1], [1, 0], [2, 1], [0, 2], [2, 0]])
    target = tv[train_ids[:, 0]] * 2.0
    fitted = fit_projection(tv, train_ids, target, ridge=1e-6)
    np.testing.assert_allclose(cold_vectors(tv, train_ids, "learned", fitted), target,
                               atol=1e-3)


def test_unseen_values_become_the_unknown_token_and_are_counted() -> None:
    items = pl.DataFrame({"item_id": [1, 2, 3], "brand": ["a", "b", None],
                          "category": ["x", "x", "y"], "price": [1.0, 2.0, 3.0]})
    tokens = item_metadata_tokens(items, fields=("brand", "type"))
    catalog = pl.DataFrame({"product_id": [7, 8], "brand": ["a", "new"],
                            "category": ["brand-new-type", "y"], "price": [1.0, 1.0]})
    cat = catalog_tokens(tokens, items, catalog)
    names = [[tokens.names[t] if t >= 0 else None for t in row] for row in cat.tokens]
    # brand:? exists (item 3 has none); the type vocabulary has no unknown token
    assert names == [["brand:a", None], ["brand:?", "type:y"]]
    assert cat.unknown == {"brand": 1, "type": 1}


def test_embed_with_catalog_index_and_plots(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared(tmp_path)
    catalog = tmp_path / "catalog.csv"
    pl.DataFrame({"product_id": [1000, 5000, 5001], "brand": ["b0", "b1", "never-seen"],
                  "category": ["t0", "t1", "t1"], "price": [1.0, 4.0, 2.0]}).write_csv(catalog)
    out = tmp_path / "emb.parquet"
    assert main(["embed", "--data", str(data), "--out", str(out), "--dim", "8", "--epochs",
                 "10", "--catalog", str(catalog), "--index", "--plots"]) == 0
    printed = capsys.readouterr().out
    assert "2 catalogue products without views" in printed and "brand 1" in printed
    store = read_store(out)
    assert len(store) == 32
    assert store.metadata["cold_start"].to_list() == [False] * 30 + [True, True]
    assert index_path(out).is_file()
    assert sorted(p.name for p in (tmp_path / "emb-plots").iterdir()) == [
        "neighbours.png", "pca-brand.png", "pca-category.png"]
    # the cold product of brand b1 lands among b1 products; the answer flags cold starts
    assert main(["similar", "--store", str(out), "--product", "5000", "-k", "5",
                 "--rebuild-index"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ANN" in lines[0]
    neighbours = [int(line.split()[1]) for line in lines[1:]]
    assert sum((n - 1000) % 3 == 1 for n in neighbours if n < 5000) >= 3
    assert main(["similar", "--store", str(out), "--product", "1001", "-k", "31",
                 "--exact"]) == 0
    assert sum("cold_start" in line for line in capsys.readouterr().out.splitlines()) == 2


def test_similar_refuses_an_unknown_product_and_an_index_of_another_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared(tmp_path)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert main(["embed", "--data", str(data), "--out", str(a), "--dim", "8", "--index"]) == 0
    assert main(["embed", "--data", str(data), "--out", str(b), "--dim", "8",
                 "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["similar", "--store", str(a), "--product", "424242"]) != 0
    err = capsys.readouterr().err
    assert "424242" in err and "not in the embedding store" in err
    from sessionrec.embeddings.ann import fingerprint, load_index

    store_b = read_store(b)
    with pytest.raises(DataError, match="other vectors"):
        load_index(index_path(a), fingerprint(store_b.vectors, store_b.product_ids))


def test_index_recall_is_the_calibration_target_and_is_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared(tmp_path)
    out = tmp_path / "emb.parquet"
    assert main(["embed", "--data", str(data), "--out", str(out), "--dim", "8", "--index",
                 "--index-recall", "0.5"]) == 0
    meta = load_index_meta(out)
    assert meta["target_recall"] == 0.5 and meta["calibration_recall"] >= 0.5
    capsys.readouterr()
    assert main(["similar", "--store", str(out), "--product", "1001", "--rebuild-index",
                 "--index-recall", "1.5"]) == 2
    assert "target_recall must lie in (0, 1], got 1.5" in capsys.readouterr().err


def load_index_meta(store: Path) -> dict:
    from sessionrec.embeddings.ann import fingerprint, load_index

    vectors = read_store(store)
    return load_index(index_path(store), fingerprint(vectors.vectors, vectors.product_ids)).meta
