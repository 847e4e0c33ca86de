"""GRU4Rec's ranking and sampled-softmax losses.

Every loss takes the score matrix of one session-parallel step, ``scores [M, M + S]``: row
``i`` is lane ``i``; column ``j < M`` is lane ``j``'s target item, so the diagonal holds each
lane's own target and the other in-batch columns are its negatives; the ``S`` columns after
them are the shared sampled negatives. Each loss returns the **sum** over the ``M`` lanes
(the trainer divides by the batch size, as GRU4Rec does).

With ``t_i`` the target score of lane ``i``, ``r_ij`` a negative's score, and ``s_ij`` the
softmax of the negatives' scores (the target excluded):

* ``top1``:      mean_j  σ(r_ij − t_i) + σ(r_ij²)
* ``bpr``:       mean_j −log σ(t_i − r_ij)
* ``top1-max``:  Σ_j s_ij (σ(r_ij − t_i) + σ(r_ij²))
* ``bpr-max``:   −log Σ_j s_ij σ(t_i − r_ij)  +  λ Σ_j s_ij r_ij²   (scores first through
  ELU(α) when ``elu_param > 0``; λ = ``bpreg``)
* ``cross-entropy``: −log softmax(scores_i)[i] over all ``M + S`` columns; with log-Q
  correction each column's score is first lowered by ``logq · log q_j``, ``q_j`` the chance
  that item ``j`` is in the column (its count for in-batch targets, its count^α for samples).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("cross-entropy", "bpr-max", "top1-max", "bpr", "top1")
_TINY = 1e-24


def _negative_mask(scores: torch.Tensor) -> torch.Tensor:
    """bool [M, M + S]: True everywhere except each lane's own target column."""
    m = scores.shape[0]
    mask = torch.ones_like(scores, dtype=torch.bool)
    idx = torch.arange(m)
    mask[idx, idx] = False
    return mask


def _targets(scores: torch.Tensor) -> torch.Tensor:
    return scores.diagonal().unsqueeze(1)  # [M, 1]


def _softmax_negatives(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)


def cross_entropy(scores: torch.Tensor, log_q: torch.Tensor | None = None,
                  logq: float = 0.0) -> torch.Tensor:
    """Sampled softmax cross-entropy; ``log_q [M + S]`` enables the log-Q correction."""
    if log_q is not None and logq > 0:
        scores = scores - logq * log_q.unsqueeze(0)
    logp = torch.log_softmax(scores, dim=1)
    return -logp.diagonal().sum()


@functools.lru_cache(maxsize=16)
def log_of_counts(most: int) -> torch.Tensor:
    """float32 [most + 1]: ``log k`` for ``k = 0 .. most`` (``log 0 = -inf``), to look counts'
    logs up (``torch.log`` of zeros takes a slow path: ~10x a look-up on 1,400 values). Read
    only."""
    return torch.arange(most + 1, dtype=torch.float32).log()


def cross_entropy_rows(row_scores: torch.Tensor, target_cols: torch.Tensor,
                       sample_log_mult: torch.Tensor, row_log_count: torch.Tensor | None = None,
                       sample_alpha: float = 1.0, logq: float = 0.0) -> torch.Tensor:
    """:func:`cross_entropy` with the repeated columns merged (same value and gradient).

    When the ``S`` samples repeat items (on a small catalogue most of them do), the ``M + S``
    columns hold far fewer distinct items. Here every lane is scored once against each
    distinct row instead: ``row_scores [M, U]``; ``target_cols [M]`` is the row of each lane's
    target; ``sample_log_mult [U]`` the log of how many samples fell on each row (``-inf``:
    none). ``c`` equal columns of score ``s`` add ``c · exp(s) = exp(s + log c)`` to the
    softmax's sum, so a row that is the target of ``t`` lanes and was sampled ``c`` times is
    one column with ``log(t + c)`` added (log-Q correction, ``logq > 0``: ``log(t · q_t^-logq +
    c · q_s^-logq)`` with ``row_log_count [U]`` = log count, ``q_t`` = count, ``q_s`` =
    count^``sample_alpha``). Lane ``i``'s own term is ``s[i, t_i] − logq · log q_t`` as in
    :func:`cross_entropy`, not the merged column's.
    """
    t_off = log_of_counts(len(target_cols)).index_select(
        0, torch.bincount(target_cols, minlength=row_scores.shape[1]))  # log targets per row
    s_off = sample_log_mult
    correct = logq > 0 and row_log_count is not None
    if correct:
        t_off = t_off - logq * row_log_count
        s_off = s_off - (logq * sample_alpha) * row_log_count
    offset = torch.logaddexp(t_off, s_off)  # [U]; -inf for a row no column holds
    loss = F.cross_entropy(row_scores + offset.unsqueeze(0), target_cols, reduction="sum")
    # F.cross_entropy's own term is s[i, t_i] + offset[t_i]; the loss's is s[i, t_i] − logq·log q
    own = offset.index_select(0, target_cols)
    if correct:
        own = own + logq * row_log_count.index_select(0, target_cols)
    return loss + own.sum()


def bpr_max(scores: torch.Tensor, bpreg: float = 1.0, elu_param: float = 0.0) -> torch.Tensor:
    if elu_param > 0:
        scores = F.elu(scores, elu_param)
    mask = _negative_mask(scores)
    soft = _softmax_negatives(scores, mask)
    diff = torch.sigmoid(_targets(scores) - scores) * soft
    loss = -torch.log(diff.sum(1) + _TINY)
    if bpreg:
        loss = loss + bpreg * (scores.square() * soft).sum(1)
    return loss.sum()


def top1_max(scores: torch.Tensor) -> torch.Tensor:
    mask = _negative_mask(scores)
    soft = _softmax_negatives(scores, mask)
    terms = torch.sigmoid(scores - _targets(scores)) + torch.sigmoid(scores.square())
    return (terms * soft).sum()


def bpr(scores: torch.Tensor) -> torch.Tensor:
    mask = _negative_mask(scores).float()
    terms = -F.logsigmoid(_targets(scores) - scores) * mask
    return (terms.sum(1) / mask.sum(1).clamp(min=1)).sum()


def top1(scores: torch.Tensor) -> torch.Tensor:
    mask = _negative_mask(scores).float()
    terms = (torch.sigmoid(scores - _targets(scores)) + torch.sigmoid(scores.square())) * mask
    return (terms.sum(1) / mask.sum(1).clamp(min=1)).sum()


def get_loss(name: str, bpreg: float = 1.0, elu_param: float = 0.0,
             logq: float = 0.0) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """The loss ``name`` as ``f(scores, log_q) -> summed loss``; ValueError lists the choices."""
    if name == "cross-entropy":
        return lambda s, q: cross_entropy(s, q, logq)
    if name == "bpr-max":
        return lambda s, q: bpr_max(s, bpreg, elu_param)
    if name == "top1-max":
        return lambda s, q: top1_max(s)
    if name == "bpr":
        return lambda s, q: bpr(s)
    if name == "top1":
        return lambda s, q: top1(s)
    raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
