"""An embedding store: one vector per product, keyed by the shop's ProductId.

The store is one Parquet file::

    product_id   Int64 or String   the shop's id (items.parquet ``item_id``), unique
    vector       Array(Float32, dim)
    brand, category, price          optional item metadata, for reading the neighbours
    cold_start   Boolean            optional: the vector came from metadata only (no views)

plus a JSON document in the Parquet key-value metadata under ``sessionrec.embeddings``:
``{"format": 1, "dim": 64, "method": "metaprod2vec", "params": {...}, ...}``. Keying by
ProductId (not by a dataset's item index) lets one store serve any vocabulary that shares the
shop's ids: :func:`load_item_vectors` aligns it to a vocabulary's ``item_idx`` and says how many
ids it lacks. Files are written to a temporary sibling and renamed, so a reader never sees a
half-written store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch

from sessionrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

META_KEY = "sessionrec.embeddings"
FORMAT = 1
METADATA_COLUMNS = ("brand", "category", "price")
# columns kept beside the vectors: item metadata, and whether a vector came from metadata only
STORED_COLUMNS = (*METADATA_COLUMNS, "cold_start")
MissingPolicy = Literal["error", "random", "zero"]


@dataclass(frozen=True)
class EmbeddingStore:
    """Vectors of products.

    Attributes:
        product_ids: the shop's ids, one per row, unique.
        vectors: float32 [n, dim].
        meta: ``dim``, ``method``, ``params`` and anything else worth keeping (JSON-able).
        metadata: optional item metadata columns (brand, category, price), one row per product.
    """

    product_ids: pl.Series
    vectors: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    metadata: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.product_ids):
            raise DataError(f"an embedding store needs one vector per product id: "
                            f"{len(self.product_ids)} ids, vectors of shape "
                            f"{tuple(self.vectors.shape)}", column="vector")
        if self.product_ids.null_count():
            raise DataError("product id is missing", column="product_id",
                            row=int(self.product_ids.is_null().arg_true()[0]) + 1)
        dup = self.product_ids.is_duplicated()
        if dup.any():
            raise DataError(f"product id {self.product_ids.filter(dup)[0]!r} occurs more than "
                            "once", column="product_id", row=int(dup.arg_true()[0]) + 1)
        if not np.isfinite(self.vectors).all():
            row = int(np.flatnonzero(~np.isfinite(self.vectors).all(axis=1))[0])
            raise DataError("vector has NaN or infinite values", column="vector", row=row + 1,
                            hint="the training diverged; lower the learning rate")
        if self.metadata is not None and self.metadata.height != len(self.product_ids):
            raise DataError("metadata needs one row per product id", column="metadata")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.product_ids)

    def index_of(self, product_ids: pl.Series | list) -> np.ndarray:
        """Row of each id in ``product_ids`` (-1 where the store lacks it)."""
        query = pl.Series("product_id", product_ids)
        keys = self.product_ids.rename("product_id")
        if query.dtype != keys.dtype:
            query, keys = query.cast(pl.String), keys.cast(pl.String)
        table = pl.DataFrame({"product_id": keys, "row": pl.int_range(len(keys), eager=True)})
        found = pl.DataFrame({"product_id": query}).join(
            table, on="product_id", how="left", maintain_order="left")["row"]
        return found.fill_null(-1).to_numpy().astype(np.int64)


def write_store(path: Path, store: EmbeddingStore, *, overwrite: bool = False) -> Path:
    """Write ``store`` to the Parquet file ``path`` atomically; returns ``path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError("embedding store already exists", path=str(path),
                        hint="choose another --out or pass --overwrite")
    if path.is_dir():
        raise DataError("embedding store path is a directory", path=str(path))
    meta = {"format": FORMAT, "dim": store.dim, **store.meta}
    df = pl.DataFrame({
        "product_id": store.product_ids.rename("product_id"),
        "vector": pl.Series(store.vectors.astype(np.float32), dtype=pl.Array(pl.Float32,
                                                                               store.dim)),
    })
    if store.metadata is not None:
        df = df.hstack(store.metadata.select(
            [c for c in STORED_COLUMNS if c in store.metadata.columns]))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.write_parquet(tmp, metadata={META_KEY: json.dumps(meta, default=str)})
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read_store(path: Path) -> EmbeddingStore:
    """Read a store written by :func:`write_store`, checking its shape and metadata."""
    path = Path(path)
    if not path.is_file():
        raise DataError("embedding store does not exist", path=str(path),
                        hint="write one with `sessionrec embed`")
    try:
        kv = pl.read_parquet_metadata(path)
        df = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"cannot read embedding store: {err}", path=str(path)) from err
    if META_KEY not in kv:
        raise DataError(f"not an embedding store (no {META_KEY!r} Parquet metadata)",
                        path=str(path), hint="write one with `sessionrec embed`")
    meta = json.loads(kv[META_KEY])
    for col in ("product_id", "vector"):
        if col not in df.columns:
            raise DataError(f"embedding store lacks column {col!r}", path=str(path), column=col)
    dtype = df.schema["vector"]
    if not isinstance(dtype, pl.Array) or dtype.size != meta.get("dim"):
        raise DataError(f"vector column has type {dtype}, expected Array(Float32, "
                        f"{meta.get('dim')})", path=str(path), column="vector")
    vectors = df["vector"].cast(pl.Array(pl.Float32, dtype.size)).to_numpy()
    vectors = np.array(vectors.reshape(len(df), dtype.size), dtype=np.float32)  # writable
    meta = {k: v for k, v in meta.items() if k not in ("format", "dim")}
    extra = [c for c in STORED_COLUMNS if c in df.columns]
    try:
        return EmbeddingStore(df["product_id"], vectors, meta,
                              df.select(extra) if extra else None)
    except DataError as err:
        raise DataError(str(err), path=str(path)) from err


def load_item_vectors(store: EmbeddingStore | Path | str, vocab_items: pl.DataFrame, *,
                      missing: MissingPolicy = "error", seed: int = 0) -> torch.Tensor:
    """float32 [n_items, dim]: the store's vectors in the vocabulary's ``item_idx`` order.

    ``vocab_items`` is a prepared ``items.parquet`` (``item_idx``, ``item_id``). Ids that the
    store lacks raise :class:`DataError` naming how many and a few of them, unless ``missing``
    is ``"zero"`` (zero vectors) or ``"random"`` (normal with the store vectors' standard
    deviation, seeded). Use the result as a model's input embedding, frozen or fine-tuned.
    """
    if missing not in ("error", "random", "zero"):
        raise ConfigError(f"missing must be 'error', 'random' or 'zero', got {missing!r}")
    where = str(store) if not isinstance(store, EmbeddingStore) else None
    if not isinstance(store, EmbeddingStore):
        store = read_store(Path(store))
    if "item_id" not in vocab_items.columns:
        raise DataError(f"the vocabulary lacks column 'item_id'; it has {vocab_items.columns}",
                        column="item_id", hint="pass the items.parquet of a prepared directory")
    if "item_idx" in vocab_items.columns:
        vocab_items = vocab_items.sort("item_idx")
        if not np.array_equal(vocab_items["item_idx"].to_numpy(), np.arange(len(vocab_items))):
            raise DataError("item_idx is not 0 .. n_items-1", column="item_idx")
    rows = store.index_of(vocab_items["item_id"])
    absent = np.flatnonzero(rows < 0)
    out = np.zeros((len(vocab_items), store.dim), dtype=np.float32)
    known = rows >= 0
    out[known] = store.vectors[rows[known]]
    if len(absent):
        examples = ", ".join(str(x) for x in vocab_items["item_id"].gather(absent[:5]))
        text = (f"the embedding store has no vector for {len(absent):,} of "
                f"{len(vocab_items):,} vocabulary items (e.g. {examples})")
        if missing == "error":
            raise DataError(text, path=where, column="product_id",
                            hint="train the store on this dataset (`sessionrec embed`) or "
                                 "choose missing='random' or missing='zero'")
        log.warning("%s; using %s vectors for them", text, missing)
        if missing == "random":
            std = float(store.vectors.std()) if len(store) else 1.0
            rng = np.random.default_rng(seed)
            out[absent] = rng.normal(0.0, std, size=(len(absent), store.dim)).astype(np.float32)
    return torch.from_numpy(out)
