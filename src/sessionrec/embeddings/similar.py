"""Similar products: exact cosine k-nearest neighbours over embedding vectors (seed 004).

Queries are scored against every vector in batches (``batch_size`` queries x all products per
matrix product), so memory stays ``batch_size * n`` floats. A product is never its own
neighbour; a zero vector has cosine 0 with everything. Neighbours are sorted by decreasing
cosine, equal cosines by increasing row (which of several rows tied at the k-th place are kept
is up to ``torch.topk``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from sessionrec.embeddings.ann import AnnIndex
from sessionrec.embeddings.store import EmbeddingStore
from sessionrec.errors import ConfigError, DataError


def cosine_knn(vectors: torch.Tensor | np.ndarray, queries: torch.Tensor | np.ndarray, k: int,
               *, exclude_self: bool = True, batch_size: int = 1024
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` rows of ``vectors`` by cosine similarity to the rows ``queries`` of it.

    Returns ``(rows int64 [q, k'], cosine float32 [q, k'])`` with ``k' = min(k, n - 1)``
    (``min(k, n)`` when ``exclude_self`` is False), best first.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    v = torch.as_tensor(vectors, dtype=torch.float32)
    q = torch.as_tensor(queries, dtype=torch.int64).reshape(-1)
    n = v.shape[0]
    if len(q) and (int(q.min()) < 0 or int(q.max()) >= n):
        raise DataError(f"query rows must lie in [0, {n})")
    k = min(k, n - 1 if exclude_self else n)
    if k <= 0:
        return torch.zeros((len(q), 0), dtype=torch.int64), torch.zeros((len(q), 0))
    unit = torch.nn.functional.normalize(v, dim=1)
    rows_out, sims_out = [], []
    for lo in range(0, len(q), batch_size):
        qb = q[lo : lo + batch_size]
        sims = unit[qb] @ unit.T  # [b, n]
        if exclude_self:
            sims[torch.arange(len(qb)), qb] = -torch.inf
        top, idx = torch.topk(sims, k, dim=1)
        idx, top = _sort_by_score_then_row(idx, top)
        rows_out.append(idx)
        sims_out.append(top)
    return torch.cat(rows_out), torch.cat(sims_out)


def ann_knn(ann: AnnIndex, vectors: np.ndarray, rows: np.ndarray, k: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate top-``k`` neighbours of the stored ``rows`` (never the row itself)."""
    found, sims = ann.search(np.asarray(vectors)[rows], k + 1)
    out_r = np.full((len(rows), k), -1, dtype=np.int64)
    out_s = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for i, r in enumerate(rows):
        keep = (found[i] >= 0) & (found[i] != r)
        got = found[i][keep][:k]
        out_r[i, : len(got)], out_s[i, : len(got)] = got, sims[i][keep][:k]
    if (out_r < 0).any():
        raise DataError("the ANN index found fewer neighbours than asked; rebuild it "
                        "(`sessionrec similar --rebuild-index`) or use --exact")
    return torch.from_numpy(out_r), torch.from_numpy(out_s)


def _sort_by_score_then_row(idx: torch.Tensor, top: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder each row by decreasing score, equal scores by increasing index."""
    by_row = torch.sort(idx, dim=1, stable=True)
    top = torch.gather(top, 1, by_row.indices)
    order = torch.sort(-top, dim=1, stable=True).indices
    return torch.gather(by_row.values, 1, order), torch.gather(top, 1, order)


def similar_products(store: EmbeddingStore, product_ids: list | pl.Series, k: int = 10,
                     *, batch_size: int = 1024, ann: AnnIndex | None = None) -> pl.DataFrame:
    """The ``k`` most similar products of each id: ``query``, ``rank`` (1 = best),
    ``product_id``, ``cosine`` and the store's metadata columns, if any (``cold_start`` marks
    products placed from their metadata only). With ``ann`` (an index of the store's vectors)
    the neighbours are approximate."""
    query = pl.Series("query", product_ids)
    if store.product_ids.dtype.is_integer() and query.dtype == pl.String:
        parsed = query.cast(pl.Int64, strict=False)
        if parsed.null_count() > query.null_count():
            bad = query.filter(parsed.is_null() & query.is_not_null())[0]
            raise DataError(f"product id {bad!r} is not an integer; the store's ids are "
                            "integers", column="product_id")
        query = parsed.rename("query")
    rows = store.index_of(query)
    if (rows < 0).any():
        absent = query.filter(pl.Series(rows < 0))
        raise DataError(f"{len(absent)} product id(s) are not in the embedding store "
                        f"(e.g. {', '.join(str(x) for x in absent.head(5))})",
                        column="product_id",
                        hint="only products seen in training, or placed from their metadata "
                             "with `sessionrec embed --catalog`, have vectors")
    if ann is None:
        nn_rows, sims = cosine_knn(store.vectors, rows, k, batch_size=batch_size)
    else:
        nn_rows, sims = ann_knn(ann, store.vectors, rows, min(k, len(store) - 1))
    kk = nn_rows.shape[1]
    flat = nn_rows.reshape(-1).numpy()
    out = pl.DataFrame({
        "query": query.gather(np.repeat(np.arange(len(query)), kk)),
        "rank": np.tile(np.arange(1, kk + 1), len(query)),
        "product_id": store.product_ids.gather(flat),
        "cosine": sims.reshape(-1).numpy(),
    })
    if store.metadata is not None:
        out = out.hstack(store.metadata[flat])
    return out
