"""Ranks and top-k lists of :class:`~sessionrec.models.scores.SparseScores`, never made dense.

A row is the fill everywhere except at its listed entries. The rank of the target then needs

* the listed entries compared with the target's score (one pass over the entries), and
* the unlisted items: with a scalar fill, all of them or none are higher; with a fill vector,
  a binary search in the sorted fill counts them all, and the listed items' own fill values
  are subtracted again.

Counts are exact integers, combined by the same formulas as
:func:`~sessionrec.evaluation.metrics.ranks_from_scores`, so both give identical ranks in every
tie mode, NaN rules included (a NaN never counts as higher or tied; a NaN target ranks behind
every non-NaN item). The top-k of a row lies among its listed entries and the first
``k + len(row)`` items of the fill in descending order, which is all a top-k pass reads.
"""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.evaluation.metrics import TieMode, check_ties, top_k
from sessionrec.models.scores import SparseScores

# Candidate cells per row block of the top-k pass (as the dense evaluator's blocks).
_BLOCK_ELEMENTS = 1 << 21
_TIE_SHARE = {"pessimistic": 1.0, "optimistic": 0.0, "average": 0.5}


def _owner(scores: SparseScores) -> np.ndarray:
    return np.repeat(np.arange(scores.rows, dtype=np.int64), scores.lengths)


def _count(owner: np.ndarray, mask: np.ndarray, rows: int) -> np.ndarray:
    return np.bincount(owner[mask], minlength=rows).astype(np.int64)


def target_scores(scores: SparseScores, targets: np.ndarray) -> np.ndarray:
    """float32 [rows]: each row's score of its target item."""
    owner = _owner(scores)
    if isinstance(scores.fill, torch.Tensor):
        out = scores.fill.float().numpy()[targets].copy()
    else:
        out = np.full(scores.rows, scores.fill, dtype=np.float32)
    hit = scores.indices == targets[owner]
    out[owner[hit]] = scores.values[hit]
    return out


def sparse_ranks(scores: SparseScores, targets: np.ndarray,
                 ties: TieMode = "pessimistic") -> np.ndarray:
    """float64 [rows]: rank of each row's target, as ``ranks_from_scores`` of the dense rows."""
    check_ties(ties)
    targets = np.asarray(targets, dtype=np.int64)
    rows, n = scores.rows, scores.n_items
    owner = _owner(scores)
    t = target_scores(scores, targets)
    tt = t[owner]
    values = scores.values
    higher = _count(owner, values > tt, rows)
    ge = _count(owner, values >= tt, rows)
    nan = _count(owner, np.isnan(values), rows)
    if isinstance(scores.fill, torch.Tensor):
        fill = scores.fill.float().numpy()
        finite = np.sort(fill[~np.isnan(fill)])
        m = len(finite)
        listed = fill[scores.indices]
        higher += (m - np.searchsorted(finite, t, "right")) - _count(owner, listed > tt, rows)
        ge += (m - np.searchsorted(finite, t, "left")) - _count(owner, listed >= tt, rows)
        nan += (n - m) - _count(owner, np.isnan(listed), rows)
    else:
        unlisted = n - scores.lengths
        higher += unlisted * (scores.fill > t)
        ge += unlisted * (scores.fill >= t)
    higher_f, ge_f = higher.astype(np.float64), ge.astype(np.float64)
    if ties == "pessimistic":
        ranks = ge_f
    elif ties == "optimistic":
        ranks = higher_f + 1
    else:
        ranks = higher_f + 1 + (ge_f - higher_f - 1) / 2
    nan_target = np.isnan(t)
    if nan_target.any():
        n_nan = nan[nan_target].astype(np.float64)
        ranks[nan_target] = (n - n_nan) + 1 + _TIE_SHARE[ties] * (n_nan - 1)
    return ranks


def _fill_order(scores: SparseScores, m: int) -> np.ndarray:
    """The first ``m`` items by descending fill (NaN last; equal fills by item index)."""
    if not isinstance(scores.fill, torch.Tensor):
        return np.arange(min(m, scores.n_items), dtype=np.int64)
    fill = scores.fill.float().numpy()
    return np.argsort(-fill, kind="stable")[:m].astype(np.int64)  # NaN sorts last


def _fill_array(scores: SparseScores) -> np.ndarray:
    if isinstance(scores.fill, torch.Tensor):
        return scores.fill.float().numpy()
    return np.full(scores.n_items, scores.fill, dtype=np.float32)


def sparse_top_k(scores: SparseScores, k: int) -> np.ndarray:
    """int64 [rows, min(k, n_items)]: the ``k`` best items of each row, best first.

    NaN scores come last, as in :func:`~sessionrec.evaluation.metrics.top_k`; items with
    equal scores may come in any order. Rows are taken in order of their entry count, so the
    padded blocks of similar rows stay narrow; the fill is only consulted for rows whose
    ``k``-th best entry does not beat every fill value.
    """
    n = scores.n_items
    k = min(int(k), n)
    order = _fill_order(scores, k + int(scores.lengths.max(initial=0)))
    fill = _fill_array(scores)
    finite = fill[~np.isnan(fill)]
    fill_max = float(finite.max()) if len(finite) else -np.inf
    by_length = np.argsort(scores.lengths, kind="stable")
    ordered = SparseScores(scores.fill, *_rows(scores, by_length), n_items=n)
    lengths = ordered.lengths
    out = np.empty((scores.rows, k), dtype=np.int64)
    lo = 0
    while lo < scores.rows:
        # rows [lo, hi) such that rows * (2 * longest + k) stays within the block budget
        hi = min(scores.rows, lo + max(1, _BLOCK_ELEMENTS // int(2 * lengths[lo] + k)))
        hi = lo + max(1, int(np.searchsorted(
            np.arange(1, hi - lo + 1) * (2 * lengths[lo:hi] + k), _BLOCK_ELEMENTS, "right")))
        block = np.arange(lo, hi)
        top, kth = _entry_top_k(ordered, block, k)
        need = ~(kth > fill_max)  # the fill may hold better items (or too few entries)
        if need.any():
            top[need] = _merged_top_k(ordered, block[need], order, fill, k)
        out[by_length[lo:hi]] = top
        lo = hi
    return out


def _padded(scores: SparseScores, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries of ``rows`` as (items, values) [len(rows), width], padded with -1 / -inf."""
    indptr, indices, values = _rows(scores, rows)
    lengths = np.diff(indptr)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    slot = np.arange(len(indices)) - indptr[:-1][owner]
    items = np.full((len(rows), width), -1, dtype=np.int64)
    vals = np.full((len(rows), width), -np.inf, dtype=np.float32)
    items[owner, slot] = indices
    vals[owner, slot] = values
    vals[np.isnan(vals)] = -np.inf  # NaN ranks last
    return items, vals


def _select(items: np.ndarray, vals: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row (padding to ``k`` with -1 / -inf), best first."""
    if vals.shape[1] < k:
        pad = k - vals.shape[1]
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, pad)), constant_values=-np.inf)
    if vals.shape[1] > k:
        part = np.argpartition(-vals, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), vals.shape)
    part_vals = np.take_along_axis(vals, part, axis=1)
    best = np.argsort(-part_vals, axis=1, kind="stable")
    return (np.take_along_axis(items, np.take_along_axis(part, best, axis=1), axis=1),
            np.take_along_axis(part_vals, best, axis=1))


def _entry_top_k(scores: SparseScores, rows: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` listed entries of ``rows`` and the ``k``-th best value (-inf if fewer)."""
    width = int(scores.lengths[rows].max()) if len(rows) else 0
    items, vals = _select(*_padded(scores, rows, width), k)
    return items, vals[:, k - 1]


def _merged_top_k(scores: SparseScores, rows: np.ndarray, order: np.ndarray,
                  fill: np.ndarray, k: int) -> np.ndarray:
    """Top ``k`` of ``rows`` among their entries and the first unlisted items of the fill."""
    n = scores.n_items
    longest = int(scores.lengths[rows].max())
    cand = order[: min(n, k + longest)]
    indptr, indices, _ = _rows(scores, rows)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(indptr))
    keys = np.sort(owner * n + indices)
    probe = np.arange(len(rows), dtype=np.int64)[:, None] * n + cand[None, :]
    if len(keys):
        listed = keys[np.minimum(np.searchsorted(keys, probe), len(keys) - 1)] == probe
    else:
        listed = np.zeros(probe.shape, dtype=bool)
    items, vals = _padded(scores, rows, longest)
    fill_vals = np.where(listed, -np.inf, fill[cand][None, :]).astype(np.float32)
    fill_vals[np.isnan(fill_vals)] = -np.inf
    top, _ = _select(np.concatenate([items, np.where(listed, -1, cand[None, :])], axis=1),
                     np.concatenate([vals, fill_vals], axis=1), k)
    bad = (top < 0).any(1)  # a padding cell won: only when most scores are -inf or NaN
    if bad.any():
        dense = SparseScores(scores.fill, *_rows(scores, rows[bad]), n_items=n).dense()
        top[bad] = top_k(dense, k)[1].numpy()
    return top


def _rows(scores: SparseScores, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, values) of the listed ``rows``."""
    lengths = scores.lengths[rows]
    indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    owner = np.repeat(np.arange(len(rows)), lengths)
    idx = scores.indptr[rows][owner] + (np.arange(indptr[-1]) - indptr[:-1][owner])
    return indptr, scores.indices[idx], scores.values[idx]
