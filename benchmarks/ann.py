"""Approximate nearest neighbours: recall@10 vs exact, single-thread query latency, build
time, memory and size, at up to 1M products x 64 dims.

Vectors: synthetic "clustered" ones (10,000 random unit centres, each product = its centre +
gaussian noise of total length 0.7, then unit length: products of one cluster have cosine
~0.65 with each other, like one product type) and, as the worst case, iid gaussian ones (no
structure at all), plus the real embedding stores given with --stores. Queries are 1,000
held-out vectors from the same distribution (a session vector is not a stored product),
searched one at a time on one thread. Recall@10 is |ANN top-10 ∩ exact top-10| / 10. Memory
is the growth of the process's peak RSS while building (a lower bound when an earlier step
already raised the peak) and the serialised index size; build time is given as wall clock and
process CPU seconds.

Candidates: faiss HNSW-Flat as sessionrec builds it (M 32, efConstruction 64, efSearch
calibrated to recall 0.97 on stored vectors and two-vector means), faiss IVF-Flat
(nlist 4 sqrt(n), nprobe 16, 32, 48 and 64) and usearch HNSW (connectivity 16, expansion 64/64),
exact search (faiss IndexFlatIP and a torch matrix product) beside them for the
ratio. usearch is measured at --hnsw-n products (builds are slow on a shared 2-core
machine). ``--methods`` picks a subset (an HNSW build of 1M vectors does not fit a session on
the shared machine); ``--ivf-nlist`` / ``--ivf-train`` size IVF's coarse quantiser.

Besides wall-clock latency each query's CPU time on its thread (``time.thread_time``) is
recorded: on a machine whose load is 10-20x its core count the wall-clock p99 measures the
scheduler, the CPU p99 what a query costs.

    python benchmarks/ann.py --n 1000000 --hnsw-n 200000 --stores STORE.parquet ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import load_average, machine, peak_rss_mb, update_section
from sessionrec.embeddings.ann import build_index, exact_search, recall_at, unit_rows

SECTION = "ann"
BUILD_THREADS = 1  # --build-threads: OpenMP threads of the HNSW build (queries: always 1)
TARGET_RECALL = 0.95  # --index-recall: the calibration target of the HNSW build
METHODS = ("exact", "hnsw", "ivf", "usearch")


def synthetic(kind: str, n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "iid":
        return unit_rows(rng.normal(size=(n, dim)).astype(np.float32))
    centres = unit_rows(rng.normal(size=(10_000, dim)).astype(np.float32))
    noise = unit_rows(rng.normal(size=(n, dim)).astype(np.float32)) * 0.7
    return unit_rows(centres[rng.integers(0, len(centres), n)] + noise)


def timed_queries(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Found rows [q, k] and latencies [q, 2] in ms: wall clock, then this thread's CPU."""
    rows, lat = [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        rows.append(search(q[None, :], k))
        lat.append((time.perf_counter() - t, time.thread_time() - c))
    return np.stack(rows), np.asarray(lat) * 1e3


def measure(name: str, vectors: np.ndarray, queries: np.ndarray, hnsw_n: int,
            k: int = 10, ivf: bool = True, methods: tuple[str, ...] = METHODS,
            ivf_nlist: int = 0, ivf_train: int = 0) -> list[str]:
    rows_out = []
    truth, _ = exact_search(vectors, queries, k)

    def row(method: str, n_: int, build_s: tuple[float, float], mem: str, size: str,
            recall: float, lat: np.ndarray, note: str = "") -> None:
        built = f"{build_s[0]:.1f} / {build_s[1]:.1f}" if build_s[0] else "—"
        rows_out.append(f"| {name} | {n_:,} | {method} | {built} | {mem} | {size} | "
                        f"{recall:.3f} | {np.percentile(lat[:, 0], 50):.3f} | "
                        f"{np.percentile(lat[:, 0], 99):.3f} | "
                        f"{np.percentile(lat[:, 1], 50):.3f} | "
                        f"{np.percentile(lat[:, 1], 99):.3f} | {load_average('/')} | {note} |")
        print(rows_out[-1], flush=True)

    if "exact" in methods:  # faiss flat and torch
        _exact_rows(row, vectors, queries, k, truth)
    if "hnsw" in methods:
        _hnsw_rows(row, vectors, queries, k, truth)
    if ivf and "ivf" in methods:
        _ivf_rows(row, vectors, queries, k, truth, ivf_nlist, ivf_train)
    if hnsw_n <= 0 or "usearch" not in methods:
        return rows_out
    _usearch_rows(row, vectors[:hnsw_n], queries, k)
    return rows_out


def _exact_rows(row, vectors: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray
                ) -> None:
    import faiss
    import torch

    n = len(vectors)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    found, lat = timed_queries(lambda q, kk: flat.search(q, kk)[1][0], queries, k)
    row("exact faiss IndexFlatIP", n, (0.0, 0.0), "—", f"{vectors.nbytes / 2**20:.0f} MB",
        recall_at(found, truth), lat)
    tv = torch.from_numpy(vectors)
    found, lat = timed_queries(
        lambda q, kk: torch.topk(tv @ torch.from_numpy(q[0]), kk).indices.numpy(), queries, k)
    row("exact torch matmul+topk", n, (0.0, 0.0), "—", "—", recall_at(found, truth), lat)


def _hnsw_rows(row, vectors: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray
               ) -> None:
    """ours: HNSW, efSearch calibrated (see sessionrec.embeddings.ann)"""
    import faiss

    n = len(vectors)
    before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    faiss.omp_set_num_threads(BUILD_THREADS)  # the graph build may use several cores ...
    try:
        ann = build_index(vectors, k=k, target_recall=TARGET_RECALL)
    finally:
        faiss.omp_set_num_threads(1)  # ... every query runs on one
    build_s = (time.perf_counter() - t0, time.process_time() - c0)
    mem = f"+{max(peak_rss_mb() - before, 0):.0f} MB"
    size = f"{len(faiss.serialize_index(ann.index)) / 2**20:.0f} MB"
    for ef in (max(ann.ef_search // 2, 1), ann.ef_search, 2 * ann.ef_search):
        ann.index.hnsw.efSearch = ef
        found, lat = timed_queries(lambda q, kk: ann.search(q, kk)[0][0], queries, k)
        row(f"{'**' if ef == ann.meta['ef_search'] else ''}faiss HNSW-Flat M32 efSearch {ef}"
            f"{'** (ours, calibrated)' if ef == ann.meta['ef_search'] else ''}", n, build_s,
            mem, size, recall_at(found, truth), lat,
            f"calibration recall {ann.meta['calibration_recall']:.3f}")


def _ivf_rows(row, vectors: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray,
              nlist: int = 0, train: int = 0) -> None:
    import faiss

    n = len(vectors)
    before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    nlist = nlist or int(4 * np.sqrt(n))
    ivf_index = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1],
                                   nlist, faiss.METRIC_INNER_PRODUCT)
    ivf_index.train(vectors[: train or 256 * nlist])
    ivf_index.add(vectors)
    build_s = (time.perf_counter() - t0, time.process_time() - c0)
    mem = f"+{max(peak_rss_mb() - before, 0):.0f} MB"
    for nprobe in (16, 32, 48, 64):
        ivf_index.nprobe = nprobe
        found, lat = timed_queries(lambda q, kk: ivf_index.search(q, kk)[1][0], queries, k)
        row(f"faiss IVF-Flat nlist {nlist} nprobe {nprobe}", n, build_s, mem, "—",
            recall_at(found, truth), lat, f"trained on {train or 256 * nlist:,}")


def _usearch_rows(row, sub: np.ndarray, queries: np.ndarray, k: int) -> None:
    sub_truth, _ = exact_search(sub, queries, k)
    try:
        from usearch.index import Index
    except ImportError:
        return
    before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    u = Index(ndim=sub.shape[1], metric="ip", dtype="f32", connectivity=16,
              expansion_add=64, expansion_search=64)
    u.add(np.arange(len(sub)), sub, threads=1)
    build_s = (time.perf_counter() - t0, time.process_time() - c0)
    mem = f"+{max(peak_rss_mb() - before, 0):.0f} MB"
    found, lat = timed_queries(lambda q, kk: u.search(q[0], kk, threads=1).keys, queries, k)
    row("usearch HNSW c16 ef64", len(sub), build_s, mem, f"{u.memory_usage / 2**20:.0f} MB",
        recall_at(found, sub_truth), lat)


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--hnsw-n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", nargs="*", default=["clustered", "iid:200000"],
                        help="synthetic kinds, each optionally with its own n (iid:200000)")
    parser.add_argument("--stores", nargs="*", default=[], help="embedding stores (.parquet)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--section", default=SECTION, help="docs/benchmarks.md section")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--ivf-nlist", type=int, default=0, help="default 4 sqrt(n)")
    parser.add_argument("--ivf-train", type=int, default=0, help="default 256 nlist")
    parser.add_argument("--build-threads", type=int, default=1,
                        help="OpenMP threads of the HNSW graph build (queries stay on 1)")
    parser.add_argument("--index-recall", type=float, default=0.95,
                        help="calibration target of the HNSW build (sessionrec's default 0.95)")
    args = parser.parse_args()
    global BUILD_THREADS, TARGET_RECALL
    BUILD_THREADS = max(1, args.build_threads)
    TARGET_RECALL = args.index_recall
    faiss.omp_set_num_threads(1)
    import torch

    torch.set_num_threads(1)
    rows = []
    for spec in args.kinds:
        kind, _, size = spec.partition(":")
        n = int(size or args.n)
        data = synthetic(kind, n + args.queries, args.dim, seed=0)
        rows += measure(f"synthetic {kind}", data[:n], data[n:], min(args.hnsw_n, n),
                        methods=tuple(args.methods), ivf_nlist=args.ivf_nlist,
                        ivf_train=args.ivf_train)
        del data
    for path in args.stores:
        from sessionrec.embeddings.store import read_store

        v = unit_rows(read_store(Path(path)).vectors)
        rng = np.random.default_rng(0)
        q = rng.permutation(len(v))[: args.queries]
        rest = np.setdiff1d(np.arange(len(v)), q)
        rows += measure(f"store {Path(path).parent.name}/{Path(path).name}", v[rest], v[q], 0,
                        ivf=False, methods=tuple(args.methods))
    command = " ".join(Path(a).name if a in args.stores else a for a in sys.argv[1:])
    body = "\n".join([
        "## Approximate nearest neighbours (similar products, p2v serving)", "",
        f"{machine()}; 2 cores shared with other sessions, CPU only, faiss "
        f"{faiss.__version__}, queries on 1 thread (HNSW build on {BUILD_THREADS}, calibrated to "
        f"recall {TARGET_RECALL:g}). "
        "Command: `python benchmarks/ann.py "
        f"{command}`. Latency: one query "
        "at a time; load = 1/5/15-minute load average when the row was measured (the machine "
        "is shared, so compare rows measured together, as ratios). Recall@10 against exact "
        "search on held-out query vectors.", "",
        "| vectors | n | method | build s (wall / CPU) | build memory | index size | recall@10 | "
        "p50 ms | p99 ms | p50 CPU ms | p99 CPU ms | load | note |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|", *rows])
    print(body)
    if not args.no_write:
        update_section(args.section, body)


if __name__ == "__main__":
    main()
