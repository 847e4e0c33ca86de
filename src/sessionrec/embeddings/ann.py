"""Approximate nearest neighbours over product vectors (faiss HNSW, inner product).

Cosine nearest neighbours at a million products are too slow to compute exactly per request
(a 1M x 64 matrix product per query). :class:`AnnIndex` is a faiss ``IndexHNSWFlat`` graph
over the unit-length vectors (``M`` links per node, ``efConstruction`` 64). The search breadth
``efSearch`` is not guessed: :func:`build_index` calibrates it, doubling from 16 until the
recall@k against exact search on ``calibration_queries`` stored vectors reaches
``target_recall`` (0.95, the recall asked of served queries; these calibration queries are
harder than held-out products: at 1M the held-out recall was 1.000), then bisecting
back towards the last value that missed (:func:`calibrate`), and keeps the measured recall
in the index's metadata.

Why faiss HNSW: docs/benchmarks.md compares faiss HNSW, faiss IVF-Flat and usearch HNSW on
recall, latency, build time and memory (faiss-cpu is 25 MB installed; usearch 11 MB plus its
numkong dependency, 44 MB). IVF builds about 4x faster and is competitive on clustered
vectors (200k: recall 0.96 at nprobe 64), but on vectors with little cluster structure it had
to scan about half of its cells to reach 0.95 (a 20k trial); HNSW reached recall 1.0 on the
200k clustered set at under a millisecond (p50) and is the choice here, at its build-time cost.

**Persistence** (never pickle): one ``.npz`` file (``numpy.load(allow_pickle=False)``) with
the faiss serialisation (``faiss.serialize_index``, faiss's own binary format) and a JSON
header that names the fingerprint of the vectors it was built from. :func:`load_index` refuses
an index whose fingerprint differs from the vectors it is asked to serve (another or a
changed store); :func:`index_for_store` rebuilds it then. Files are written to a temporary
sibling and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".ann.npz"
# Below this many products exact search is fast enough (and exact): no index is built.
EXACT_BELOW = 20_000


def fingerprint(vectors: np.ndarray, ids: Any = None) -> str:
    """sha256 (16 hex digits) of the float32 vectors, their shape and optionally the ids."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256(f"{v.shape[0]}x{v.shape[1]}".encode())
    h.update(memoryview(v).cast("B"))
    if ids is not None:
        h.update("\n".join(str(x) for x in ids).encode())
    return h.hexdigest()[:16]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norm, 1e-12), dtype=np.float32)


def exact_search(unit: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of unit ``queries`` [q, d] over ``unit`` [n, d]."""
    import faiss

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    sims, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(unit)))
    return rows.astype(np.int64), sims


@dataclass
class AnnIndex:
    """A faiss HNSW index over unit vectors plus what it was built from and measured."""

    index: Any  # faiss.IndexHNSWFlat
    meta: dict[str, Any]

    @property
    def ef_search(self) -> int:
        return int(self.index.hnsw.efSearch)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows (int64 [q, k], -1 where fewer were found) and inner products."""
        q = unit_rows(np.atleast_2d(queries))
        sims, rows = self.index.search(q, int(k))
        return rows.astype(np.int64), sims


def build_index(vectors: np.ndarray, *, m: int = 32, ef_construction: int = 64,
                target_recall: float = 0.95, k: int = 10, calibration_queries: int = 256,
                seed: int = 0, ids: Any = None) -> AnnIndex:
    """Build and calibrate an HNSW index over the rows of ``vectors`` (see module doc)."""
    import faiss

    if not 0 < target_recall <= 1:
        raise ConfigError(f"target_recall must lie in (0, 1], got {target_recall}")
    if m < 2 or ef_construction < 1:
        raise ConfigError(f"HNSW needs m >= 2 and ef_construction >= 1, got {m}, "
                          f"{ef_construction}")
    unit = unit_rows(vectors)
    n, dim = unit.shape
    if n < 2:
        raise DataError(f"an index needs at least 2 vectors, got {n}")
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(unit)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    ef, recall = calibrate(index, unit, target_recall, k, calibration_queries, rng)
    meta = {"format": FORMAT, "kind": "faiss.IndexHNSWFlat", "metric": "cosine", "n": n,
            "dim": dim, "m": m, "ef_construction": ef_construction, "ef_search": ef,
            "calibration_recall": recall, "calibration_k": k, "target_recall": target_recall,
            "build_seconds": build_s, "faiss": faiss.__version__,
            "fingerprint": fingerprint(vectors, ids)}
    log.info("ANN index: %s vectors, M %d, efSearch %d (recall@%d %.3f), built in %.1f s",
             f"{n:,}", m, ef, k, recall, build_s)
    return AnnIndex(index, meta)


def calibrate(index: Any, unit: np.ndarray, target: float, k: int, n_queries: int,
              rng: np.random.Generator, max_ef: int = 4096) -> tuple[int, float]:
    """The smallest ``efSearch`` whose recall@k vs exact reaches ``target``.

    Doubles ``efSearch`` from 16 until the recall reaches the target, then bisects between
    the last value that missed it and the first that reached it, to 1/8 of that gap's lower
    end (at least 8): the query cost grows with ``efSearch``, so stopping at the first power
    of two can cost up to twice the time the target needs.

    Two kinds of query, as served: stored vectors (similar products; the query itself is left
    out of both lists) and normalised means of two random stored vectors (a session vector,
    which is no stored product). The recall is the lower of the two.
    """
    n = len(unit)
    kk = min(k, n - 1)
    rows = rng.choice(n, min(n_queries, n), replace=False)
    pairs = rng.integers(0, n, size=(len(rows), 2))
    mixes = unit_rows(unit[pairs[:, 0]] + unit[pairs[:, 1]])
    truth_s, _ = exact_search(unit, unit[rows], kk + 1)
    truth_m, _ = exact_search(unit, mixes, kk)

    def recall_with(ef: int) -> float:
        index.hnsw.efSearch = ef
        _, found_s = index.search(unit[rows], kk + 1)
        _, found_m = index.search(mixes, kk)
        return min(recall_at(_without(found_s, rows, kk), _without(truth_s, rows, kk)),
                   recall_at(found_m, truth_m))

    ef, recall = 16, recall_with(16)
    while recall < target and ef < max_ef:
        ef *= 2
        recall = recall_with(ef)
    if recall < target or ef == 16:
        return ef, recall
    lo, hi, hi_recall = ef // 2, ef, recall  # lo misses the target, hi reaches it
    step = max(8, lo // 8)
    while hi - lo > step:
        mid = (lo + hi) // 2
        got = recall_with(mid)
        if got >= target:
            hi, hi_recall = mid, got
        else:
            lo = mid
    index.hnsw.efSearch = hi
    return hi, hi_recall


def _without(found: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Each row of ``found`` without the query's own row, cut to ``k``."""
    return np.stack([f[f != r][:k] for f, r in zip(found, rows, strict=True)])


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` that ``found`` contains."""
    hits = [len(set(f.tolist()) & set(t.tolist())) / max(len(t), 1)
            for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) if hits else 1.0


def index_path(store_path: Path) -> Path:
    """Where the index of a store lies: beside it, ``<store>.ann.npz``."""
    return Path(store_path).with_name(Path(store_path).name + SUFFIX)


def save_index(path: Path, ann: AnnIndex) -> Path:
    """Write ``ann`` to ``path`` atomically (npz of the faiss bytes and a JSON header)."""
    import faiss

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.frombuffer(json.dumps(ann.meta).encode(), dtype=np.uint8)
    data = faiss.serialize_index(ann.index)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, header=header, index=np.asarray(data, dtype=np.uint8))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a saved index."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(npz["header"].tobytes().decode())
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"not a sessionrec ANN index: {err}", path=str(path)) from err


def load_index(path: Path, expected_fingerprint: str) -> AnnIndex:
    """Read an index; refuse it unless it was built from the vectors ``expected_fingerprint``."""
    import faiss

    path = Path(path)
    meta = read_header(path)
    if meta.get("fingerprint") != expected_fingerprint:
        raise DataError(f"the ANN index was built from other vectors (fingerprint "
                        f"{meta.get('fingerprint')}) than the store's ({expected_fingerprint})",
                        path=str(path), hint="rebuild it: `sessionrec similar --rebuild-index`")
    with np.load(path, allow_pickle=False) as npz:
        index = faiss.deserialize_index(npz["index"])
    index.hnsw.efSearch = int(meta["ef_search"])
    return AnnIndex(index, meta)


def index_for_store(store_path: Path, vectors: np.ndarray, ids: Any = None, *,
                    rebuild: bool = False, **build: Any) -> AnnIndex:
    """The store's index: read from beside it when its fingerprint matches, else (re)built
    and saved there."""
    path = index_path(store_path)
    expected = fingerprint(vectors, ids)
    if path.is_file() and not rebuild:
        try:
            return load_index(path, expected)
        except DataError as err:
            log.warning("%s; rebuilding it", err)
    ann = build_index(vectors, ids=ids, **build)
    save_index(path, ann)
    return ann
