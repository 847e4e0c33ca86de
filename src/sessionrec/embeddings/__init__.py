"""Product embeddings: Meta-Prod2Vec training, the embedding store and similar products.

``sessionrec embed`` trains Meta-Prod2Vec (or plain prod2vec) on a prepared directory's
training split and writes a store keyed by ProductId; :func:`load_item_vectors` aligns a store
to any vocabulary (``items.parquet``) as an ``[n_items, dim]`` tensor for a model's input
embedding; :func:`similar_products` is ``sessionrec similar``.
"""

from sessionrec.embeddings.metadata import MetadataTokens, item_metadata_tokens, price_classes
from sessionrec.embeddings.metaprod2vec import (
    MetaProd2Vec,
    MetaProd2VecConfig,
    to_store,
    train,
    train_prepared,
)
from sessionrec.embeddings.similar import cosine_knn, similar_products
from sessionrec.embeddings.store import (
    EmbeddingStore,
    load_item_vectors,
    read_store,
    write_store,
)

__all__ = [
    "EmbeddingStore",
    "MetaProd2Vec",
    "MetaProd2VecConfig",
    "MetadataTokens",
    "cosine_knn",
    "item_metadata_tokens",
    "load_item_vectors",
    "price_classes",
    "read_store",
    "similar_products",
    "to_store",
    "train",
    "train_prepared",
    "write_store",
]
