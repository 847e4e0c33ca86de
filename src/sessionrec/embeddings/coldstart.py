"""Cold start: vectors for products nobody has viewed yet, from their metadata tokens.

Meta-Prod2Vec puts brand, product-type and price-class tokens in the item space: a token's
input vector ``u_m`` is trained, like an item's ``u_i``, to predict the output vectors of the
items viewed near items that carry it. A product with metadata but no views gets:

* ``"average"``: the mean of its tokens' input vectors;
* ``"learned"``: a linear map of its tokens' vectors, ``[u_brand, u_type, u_price] @ W``, with
  ``W`` fitted by ridge regression on the trained products (their token vectors -> their own
  item vectors).

A value the training never saw (a new brand) becomes its field's unknown token (``brand:?``)
when the training had one, else the field is left out; both cases are counted per field. A
product none of whose fields has a usable token gets no vector (``None`` in ``covered``).
Price classes of new products are their price's quantile bucket among the training products'
prices of the same type (:mod:`sessionrec.embeddings.metadata`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from sessionrec.embeddings.metadata import FIELD_COLUMNS, UNKNOWN, MetadataTokens
from sessionrec.embeddings.store import METADATA_COLUMNS, EmbeddingStore
from sessionrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METHODS = ("average", "learned")


@dataclass(frozen=True)
class CatalogTokens:
    """Token ids of new products (-1: the field has no usable token) and what was unknown."""

    tokens: np.ndarray  # int64 [m, n_fields]
    unknown: dict[str, int]  # per field: values never seen in training (mapped or dropped)

    @property
    def covered(self) -> np.ndarray:
        """bool [m]: products with at least one usable token."""
        return (self.tokens >= 0).any(axis=1)


def price_class_of(train_items: pl.DataFrame, catalog: pl.DataFrame, n_classes: int
                   ) -> pl.Series:
    """Price class (String, ``?`` when unknown) of each new product among the training
    products' prices of its type: ``floor(n_classes * r / n)``, ``r`` training prices of the
    type strictly lower, ``n`` the type's training prices."""
    cat = "category" if "category" in train_items.columns else None
    out = []
    prices = train_items["price"].cast(pl.Float64).to_numpy()
    types = train_items[cat].to_list() if cat else [None] * train_items.height
    lists: dict[object, list[float]] = {}
    for t, p in zip(types, prices, strict=True):
        if np.isfinite(p) and p > 0:
            lists.setdefault(t, []).append(float(p))
    groups = {t: np.sort(np.asarray(v)) for t, v in lists.items()}
    new_types = catalog[cat].to_list() if cat and cat in catalog.columns else [None] * len(catalog)
    for t, p in zip(new_types, catalog["price"].cast(pl.Float64).to_list(), strict=True):
        known = groups.get(t)
        if p is None or not np.isfinite(p) or p <= 0 or known is None or not len(known):
            out.append(UNKNOWN)
        else:
            r = int(np.searchsorted(known, p, side="left"))
            out.append(str(n_classes * r // len(known)))
    return pl.Series("price", out, dtype=pl.String)


def catalog_tokens(tokens: MetadataTokens, train_items: pl.DataFrame, catalog: pl.DataFrame,
                   n_price_classes: int = 5) -> CatalogTokens:
    """Token ids of the products of ``catalog`` (brand / category / price columns) in the
    training token vocabulary ``tokens`` (built from ``train_items``)."""
    index = {name: t for t, name in enumerate(tokens.names)}
    out = np.full((catalog.height, len(tokens.fields)), -1, dtype=np.int64)
    unknown: dict[str, int] = {}
    for j, field in enumerate(tokens.fields):
        col = FIELD_COLUMNS[field]
        if col not in catalog.columns:
            raise DataError(f"the catalogue lacks column {col!r} (metadata field {field!r}, "
                            f"used in training)", column=col)
        if field == "price":
            values = price_class_of(train_items, catalog, n_price_classes).to_list()
        else:
            values = [UNKNOWN if v is None else str(v) for v in catalog[col].to_list()]
        fallback = index.get(f"{field}:{UNKNOWN}", -1)
        ids = [index.get(f"{field}:{v}", -2) for v in values]
        unknown[field] = sum(1 for i, v in zip(ids, values, strict=True)
                             if i == -2 and v != UNKNOWN)
        out[:, j] = [fallback if i == -2 else i for i in ids]
    for field, n in unknown.items():
        if n:
            log.warning("cold start: %d product(s) have a %s never seen in training (-> %s:%s "
                        "or left out)", n, field, field, UNKNOWN)
    return CatalogTokens(out, unknown)


def token_features(token_vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """[m, n_fields * dim]: each product's token vectors side by side (zeros where -1)."""
    dim = token_vectors.shape[1]
    feats = np.zeros((ids.shape[0], ids.shape[1], dim), dtype=np.float32)
    present = ids >= 0
    feats[present] = token_vectors[ids[present]]
    return feats.reshape(ids.shape[0], -1)


def fit_projection(token_vectors: np.ndarray, train_ids: np.ndarray, item_vectors: np.ndarray,
                   ridge: float = 1.0) -> np.ndarray:
    """``W`` [n_fields * dim, dim] minimising ``|X W - U|^2 + ridge |W|^2`` over the trained
    products (``X`` their token features, ``U`` their item vectors)."""
    x = token_features(token_vectors, train_ids).astype(np.float64)
    gram = x.T @ x + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ item_vectors.astype(np.float64)).astype(np.float32)


def cold_vectors(token_vectors: np.ndarray, ids: np.ndarray, method: str = "average",
                 projection: np.ndarray | None = None) -> np.ndarray:
    """float32 [m, dim] vectors of new products (zero rows where no token is usable)."""
    if method not in METHODS:
        raise ConfigError(f"cold-start method must be one of {METHODS}, got {method!r}")
    if method == "learned":
        if projection is None:
            raise ConfigError("the learned cold-start method needs a fitted projection")
        out = token_features(token_vectors, ids) @ projection
        out[~(ids >= 0).any(axis=1)] = 0.0
        return out.astype(np.float32)
    present = (ids >= 0).astype(np.float32)
    summed = token_features(token_vectors, ids).reshape(ids.shape[0], ids.shape[1], -1).sum(1)
    return (summed / np.maximum(present.sum(1, keepdims=True), 1.0)).astype(np.float32)


def read_catalog(path: Path) -> pl.DataFrame:
    """A product catalogue (Parquet or CSV): ``product_id`` plus brand / category / price."""
    path = Path(path)
    if not path.is_file():
        raise DataError("catalogue file does not exist", path=str(path))
    try:
        df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(
            path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"cannot read the catalogue: {err}", path=str(path)) from err
    if "product_id" not in df.columns:
        raise DataError(f"the catalogue lacks column 'product_id'; it has {df.columns}",
                        path=str(path), column="product_id")
    if df["product_id"].null_count():
        raise DataError("product_id is missing", path=str(path), column="product_id",
                        row=int(df["product_id"].is_null().arg_true()[0]) + 2)
    if "price" in df.columns and not df["price"].dtype.is_numeric():
        raise DataError(f"price has type {df['price'].dtype}, expected a number",
                        path=str(path), column="price")
    return df.unique("product_id", keep="first", maintain_order=True)


def add_cold_start(store: EmbeddingStore, tokens: MetadataTokens, token_vectors: np.ndarray,
                   items: pl.DataFrame, catalog: pl.DataFrame, *, method: str = "average",
                   n_price_classes: int = 5) -> tuple[EmbeddingStore, dict]:
    """``store`` plus the catalogue's products it lacks, placed from their metadata
    (``cold_start`` true); returns the new store and counts (added, no usable token, unknown
    values per field)."""
    if not tokens.fields:
        raise DataError("cold start needs metadata tokens: the embedding was trained without "
                        "brand / category / price", hint="train with --lambda-meta > 0 on data "
                        "with item metadata")
    ids = catalog["product_id"]
    if ids.dtype != store.product_ids.dtype:
        ids = ids.cast(store.product_ids.dtype, strict=False)
    new = catalog.with_columns(ids.alias("product_id")).filter(
        pl.Series(store.index_of(ids) < 0) & ids.is_not_null())
    cat = catalog_tokens(tokens, items, new, n_price_classes)
    projection = None
    if method == "learned":
        projection = fit_projection(token_vectors, tokens.item_tokens, store.vectors)
    vectors = cold_vectors(token_vectors, cat.tokens, method, projection)
    keep = cat.covered
    added = new.filter(pl.Series(keep))
    meta_cols = [c for c in METADATA_COLUMNS if c in (store.metadata.columns if
                                                      store.metadata is not None else [])]
    old_meta = (store.metadata.select(meta_cols) if store.metadata is not None else
                pl.DataFrame()).with_columns(cold_start=pl.lit(False))
    new_meta = added.select([pl.col(c).cast(old_meta.schema[c]) if c in added.columns else
                             pl.lit(None, dtype=old_meta.schema[c]).alias(c) for c in meta_cols]
                            ).with_columns(cold_start=pl.lit(True))
    out = EmbeddingStore(pl.concat([store.product_ids, added["product_id"]]),
                         np.concatenate([store.vectors, vectors[keep]]),
                         {**store.meta, "cold_start": {"method": method, "added": added.height}},
                         pl.concat([old_meta, new_meta]))
    info = {"added": added.height, "no_usable_token": int((~keep).sum()),
            "unknown": cat.unknown, "already_in_store": catalog.height - new.height}
    return out, info
