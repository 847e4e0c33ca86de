"""``sessionrec embed`` and ``sessionrec similar`` on a hand-made prepared directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.embeddings.store import load_item_vectors, read_store
from sessionrec.errors import DataError


def prepared(tmp_path: Path) -> Path:
    """30 items of 3 brands (idx i -> brand i % 3); train sessions stay within a brand."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(300):
        brand = s % 3
        for j, i in enumerate(brand + 3 * rng.integers(0, 10, 5)):
            rows.append((s, int(i), datetime(2024, 1, 1, tzinfo=UTC).timestamp() + 60 * s + j))
    train = pl.DataFrame(rows, schema=["session_id", "item_idx", "t"], orient="row")
    train = train.with_columns(
        ts=pl.from_epoch(pl.col("t"), time_unit="s").dt.replace_time_zone("UTC"),
        item_idx=pl.col("item_idx").cast(pl.Int32)).drop("t")
    data = tmp_path / "data"
    data.mkdir()
    train.write_parquet(data / "train.parquet")
    (data / "valid.parquet").write_text("not parquet: embed must read the train split only")
    pl.DataFrame({
        "item_idx": pl.Series(range(30), dtype=pl.Int32),
        "item_id": [1000 + i for i in range(30)],
        "brand": [f"b{i % 3}" for i in range(30)],
        "category": [f"t{i % 2}" for i in range(30)],
        "price": [float(i + 1) for i in range(30)],
    }).write_parquet(data / "items.parquet")
    return data


def test_embed_then_similar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared(tmp_path)
    out = tmp_path / "emb.parquet"
    assert main(["embed", "--data", str(data), "--out", str(out), "--dim", "8",
                 "--epochs", "10"]) == 0
    assert "metadata fields: brand, type, price" in capsys.readouterr().out
    store = read_store(out)
    assert len(store) == 30 and store.dim == 8 and store.meta["method"] == "metaprod2vec"
    assert store.meta["params"]["window"] == 3
    vectors = load_item_vectors(out, pl.read_parquet(data / "items.parquet"))
    assert vectors.shape == (30, 8) and np.array_equal(vectors.numpy(), store.vectors)
    assert main(["similar", "--store", str(out), "--product", "1000", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("products similar to 1000 [b0, t0, 1.0]")
    neighbours = [int(line.split()[1]) for line in lines[1:]]
    assert len(neighbours) == 3 and 1000 not in neighbours
    assert all((n - 1000) % 3 == 0 for n in neighbours)  # the same brand


def test_embed_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = prepared(tmp_path)
    out = tmp_path / "emb.parquet"
    out.write_text("keep me")
    assert main(["embed", "--data", str(data), "--out", str(out), "--epochs", "1"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"


def test_embed_needs_a_prepared_directory(tmp_path: Path) -> None:
    from sessionrec.embeddings.metaprod2vec import train_prepared

    with pytest.raises(DataError, match=r"train.parquet missing"):
        train_prepared(tmp_path)
