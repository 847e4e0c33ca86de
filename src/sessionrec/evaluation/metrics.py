"""Ranks and rank-based accuracy metrics for full-ranking next-item evaluation.

A prediction is one row of scores over the whole catalogue and the index of the item that
really came next. Its rank is ``1 + #items scored strictly higher than the target``, plus, by
tie mode, nothing (``optimistic``), every other item with the target's score (``pessimistic``,
the default: a model cannot win by giving many items the same score) or half of them
(``average``).

NaN scores rank below everything, ``-inf`` included: a NaN never counts as higher than the
target, and a target scored NaN ranks behind every item that is not NaN (ties with the other
NaNs by the tie mode). A broken model therefore looks bad, never good.

For single-target next-item prediction the metrics at cut-off ``K`` of one prediction are
``recall@K = hitrate@K = [rank <= K]``, ``mrr@K = 1/rank if rank <= K else 0`` and
``ndcg@K = 1/log2(rank + 1) if rank <= K else 0``; a test set's value is their mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

TieMode = Literal["pessimistic", "optimistic", "average"]
TIE_MODES: tuple[str, ...] = ("pessimistic", "optimistic", "average")


def check_ties(ties: str) -> None:
    """Raise ValueError unless ``ties`` is one of :data:`TIE_MODES`."""
    if ties not in TIE_MODES:
        raise ValueError(f"unknown tie mode {ties!r}; valid modes: {', '.join(TIE_MODES)}")


def ranks_from_scores(
    scores: torch.Tensor, targets: torch.Tensor, ties: TieMode = "pessimistic"
) -> torch.Tensor:
    """Rank of each target among all items of its row.

    Args:
        scores: float tensor [B, n_items], higher is better.
        targets: int64 tensor [B], the column of each row's true item.
        ties: how items with exactly the target's score count (see the module docstring).

    Returns:
        float64 tensor [B] of ranks, 1 for the top item; ``.5`` only with ``average``.
    """
    check_ties(ties)
    if scores.ndim != 2 or targets.ndim != 1 or len(targets) != len(scores):
        raise ValueError(
            f"need scores [B, n_items] and targets [B], got {tuple(scores.shape)} and "
            f"{tuple(targets.shape)}"
        )
    n_items = scores.shape[1]
    target_scores = scores.gather(1, targets.long().view(-1, 1))  # [B, 1]
    # Comparisons written as float 0/1 and summed are several times faster on CPU than bool
    # comparisons and integer sums; float32 counts are exact below 2**24 items. NaN compares
    # False, so a NaN item never counts as higher or equal.
    count_dtype = torch.float32 if n_items < 2**24 else torch.float64

    def count(compare: Callable[..., torch.Tensor]) -> torch.Tensor:
        hits = torch.empty(scores.shape, dtype=count_dtype, device=scores.device)
        return compare(scores, target_scores, out=hits).sum(1).double()

    if ties == "pessimistic":
        ranks = count(torch.ge)  # counts the target itself: 1 + higher + other ties
    else:
        higher = count(torch.gt)
        if ties == "optimistic":
            ranks = higher + 1
        else:
            ranks = higher + 1 + (count(torch.ge) - higher - 1) / 2
    nan_target = target_scores.view(-1).isnan()
    if bool(nan_target.any()):
        n_nan = scores[nan_target].isnan().sum(1).double()
        higher = n_items - n_nan
        others = n_nan - 1
        tie_share = {"pessimistic": 1.0, "optimistic": 0.0, "average": 0.5}[ties]
        ranks[nan_target] = higher + 1 + tie_share * others
    return ranks


# Columns per group of the two-stage top-k (see _grouped_top_k).
_GROUP = 128


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best columns of each row, best first, NaN scores ranked last.

    Args:
        scores: float tensor [B, n_items].
        k: how many; clipped to ``n_items``.

    Returns:
        ``(values, indices)``, both [B, min(k, n_items)]. Columns with equal scores may come
        in any order.
    """
    n_items = scores.shape[1]
    k = min(int(k), n_items)
    if n_items // _GROUP > 4 * k:
        values, indices = _grouped_top_k(scores, k)
    else:
        values, indices = torch.topk(scores, k, dim=1)
    # topk ranks NaN above everything; redo only the (rare) rows that have one.
    bad = values.isnan().any(1)
    if bool(bad.any()):
        rows = scores[bad]
        values[bad], indices[bad] = torch.topk(rows.masked_fill(rows.isnan(), -math.inf), k,
                                               dim=1)
    return values, indices


def _grouped_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k in two stages, about twice as fast as ``torch.topk`` on wide rows.

    The k best columns lie in the k groups (of ``_GROUP`` adjacent columns) with the highest
    maxima, so one cheap max per group narrows the search to ``k * _GROUP`` candidates (plus
    the columns left over after the last full group).
    """
    rows, n_items = scores.shape
    full = n_items - n_items % _GROUP
    maxima = scores[:, :full].reshape(rows, full // _GROUP, _GROUP).amax(2)
    groups = torch.topk(maxima, k, dim=1).indices  # [B, k]
    offsets = torch.arange(_GROUP, device=scores.device)
    candidates = (groups.unsqueeze(2) * _GROUP + offsets).flatten(1)  # [B, k * _GROUP]
    if full < n_items:
        rest = torch.arange(full, n_items, device=scores.device).expand(rows, -1)
        candidates = torch.cat([candidates, rest], dim=1)
    values, pos = torch.topk(scores.gather(1, candidates), k, dim=1)
    return values, candidates.gather(1, pos)


def _as_numpy(ranks: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(ranks, torch.Tensor):
        ranks = ranks.detach().cpu().numpy()
    return np.asarray(ranks, dtype=np.float64)


def _check_k(k: int) -> None:
    if int(k) < 1:
        raise ValueError(f"cut-off k must be at least 1, got {k}")


def recall_at_k(ranks: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """float64 [N]: 1 where ``rank <= k``, else 0 (equals hit rate for one target)."""
    _check_k(k)
    return (_as_numpy(ranks) <= k).astype(np.float64)


hitrate_at_k = recall_at_k


def mrr_at_k(ranks: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """float64 [N]: ``1 / rank`` where ``rank <= k``, else 0."""
    _check_k(k)
    r = _as_numpy(ranks)
    return np.where(r <= k, 1.0 / r, 0.0)


def ndcg_at_k(ranks: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """float64 [N]: ``1 / log2(rank + 1)`` where ``rank <= k``, else 0 (one relevant item)."""
    _check_k(k)
    r = _as_numpy(ranks)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


RANK_METRICS: dict[str, Callable[[np.ndarray | torch.Tensor, int], np.ndarray]] = {
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
    "hitrate": hitrate_at_k,
}


def parse_metric(name: str) -> tuple[str, int]:
    """``"mrr@20"`` -> ``("mrr", 20)``; ValueError naming the valid metrics otherwise."""
    base, sep, k = name.partition("@")
    if not sep or base not in RANK_METRICS or not k.isdigit() or int(k) < 1:
        from sessionrec.errors import valid_choices

        raise ValueError(
            f"unknown metric {name!r} ({valid_choices(base, RANK_METRICS)}); write "
            "<metric>@<k> with k >= 1, e.g. 'mrr@20'"
        )
    return base, int(k)


def metric_values(name: str, ranks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-prediction values of the metric ``name`` (e.g. ``"ndcg@10"``): float64 [N]."""
    base, k = parse_metric(name)
    return RANK_METRICS[base](ranks, k)
