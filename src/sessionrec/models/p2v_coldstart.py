"""Cold-start products for a served p2v model: its store, placed from the catalogue, checked.

A p2v run learns its own product space, so products without views must be placed in *that*
space, from the metadata token vectors the model kept (``token_vectors_``), not in the space
of a separately trained ``sessionrec embed`` store. ``sessionrec embed --from-run RUN
--catalog CATALOG --out STORE`` writes the run's item vectors keyed by ProductId plus the
catalogue's unseen products (``cold_start`` true, :func:`~sessionrec.embeddings.coldstart.
add_cold_start`); the store's metadata names the fingerprint of the model's vectors.
``sessionrec serve --model RUN --embeddings STORE`` then loads the cold-start rows
(:func:`cold_products`) and refuses a store written from other vectors.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from sessionrec.embeddings.ann import fingerprint
from sessionrec.embeddings.coldstart import add_cold_start
from sessionrec.embeddings.metadata import item_metadata_tokens
from sessionrec.embeddings.store import METADATA_COLUMNS, EmbeddingStore
from sessionrec.errors import DataError, SessionRecError
from sessionrec.models.p2v import Prod2VecRecommender

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "model_fingerprint"


def model_fingerprint(model: Prod2VecRecommender) -> str:
    """The fingerprint of a fitted p2v model's item vectors (what its store names)."""
    return fingerprint(model.vectors_.numpy())


def store_of_model(model: Prod2VecRecommender, items: pl.DataFrame, *, source: str = ""
                   ) -> EmbeddingStore:
    """The model's unit item vectors keyed by ``items.item_id`` (``items`` in item_idx order)."""
    if not isinstance(model, Prod2VecRecommender):
        raise SessionRecError(f"cold-start products are placed in a p2v model's space; the run "
                              f"holds a {model.name!r} model")
    if items.height != model.n_items_:
        raise DataError(f"the vocabulary has {items.height:,} items, the model "
                        f"{model.n_items_:,}", column="item_idx")
    items = items.sort("item_idx")
    extra = [c for c in METADATA_COLUMNS if c in items.columns]
    meta = {"method": "p2v", "params": model.get_params(), "source": source,
            FINGERPRINT_KEY: model_fingerprint(model)}
    return EmbeddingStore(items["item_id"], model.vectors_.numpy().copy(), meta,
                          items.select(extra) if extra else None)


def store_with_catalog(model: Prod2VecRecommender, items: pl.DataFrame, catalog: pl.DataFrame,
                       *, method: str = "average", source: str = ""
                       ) -> tuple[EmbeddingStore, dict]:
    """:func:`store_of_model` plus the catalogue's products without views, placed from their
    metadata tokens with the model's token vectors; returns the store and the counts."""
    store = store_of_model(model, items, source=source)
    token_vectors = getattr(model, "token_vectors_", None)
    if token_vectors is None:
        raise SessionRecError("this p2v model was saved without its metadata token vectors "
                              "(trained before cold start was served): train it again")
    n_classes = model.embedding.price_classes
    tokens = item_metadata_tokens(items.sort("item_idx"), n_price_classes=n_classes)
    if tokens.n_tokens != token_vectors.shape[0]:
        raise DataError(f"the vocabulary's metadata gives {tokens.n_tokens:,} tokens, the model "
                        f"learned {token_vectors.shape[0]:,}: the model was trained on other "
                        "item metadata (or with lambda_meta 0)", column="brand/category/price")
    return add_cold_start(store, tokens, token_vectors.numpy(), items.sort("item_idx"), catalog,
                          method=method, n_price_classes=n_classes)


def cold_products(store: EmbeddingStore, model: Prod2VecRecommender, known: set[str],
                  path: str = "") -> tuple[list, np.ndarray]:
    """The store's cold-start products unknown to the vocabulary (``known``: its ProductIds as
    text) and their vectors; refuses a store not written from ``model``'s vectors."""
    if not isinstance(model, Prod2VecRecommender):
        raise SessionRecError(f"--embeddings adds cold-start products to a p2v model; the "
                              f"served model is {model.name!r}")
    expected = model_fingerprint(model)
    if store.meta.get(FINGERPRINT_KEY) != expected:
        raise DataError(f"the embedding store was not written from the served model's vectors "
                        f"(its model fingerprint {store.meta.get(FINGERPRINT_KEY)}, the "
                        f"model's {expected})", path=path or None,
                        hint="write it from this run: sessionrec embed --from-run RUN_DIR "
                             "--catalog CATALOG --out STORE")
    if store.metadata is None or "cold_start" not in store.metadata.columns:
        return [], np.zeros((0, store.dim), dtype=np.float32)
    cold = store.metadata["cold_start"].fill_null(False).to_numpy()
    ids = store.product_ids.to_list()
    rows = [r for r in np.flatnonzero(cold) if str(ids[r]) not in known]
    log.info("cold-start products from the store: %d", len(rows))
    return [ids[r] for r in rows], store.vectors[np.asarray(rows, dtype=np.int64)].astype(
        np.float32).reshape(len(rows), store.dim)
