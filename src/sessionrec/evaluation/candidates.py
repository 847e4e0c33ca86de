"""The "candidate ranking" protocol: score the exposures a user was shown, per user.

Click-probability models (ALPINE, seed 001) are judged on each user's test exposures: the
candidates are the items actually shown, the positives the clicked ones. Per user ``u``

* **AUC** (seed 001 eq. 9): the share of (clicked, not-clicked) pairs ordered correctly,
  ``1/(|I+||I-|) Σ_i Σ_j δ(ŷ_i > ŷ_j)``; a tie counts as wrong (pessimistic). Only users with
  at least one clicked and one not-clicked test exposure have an AUC; the mean is over them.
* **P@K / R@K**: clicks among the top K of the user's candidates ordered by score, divided by
  K and by the user's clicks; among equal scores a non-click is ranked first (pessimistic).
  Users with at least one test click count. **F@K** is the harmonic mean of mean P@K and mean
  R@K, as seed 001 reports it.

With fewer than K candidates the top K is the whole list: on short lists (KuaiRand users have
2 test exposures at the median) P@K is small and R@K is 1 for every model, so AUC carries the
comparison there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from sessionrec.errors import DataError

DEFAULT_KS = tuple(range(10, 101, 10))


def _groups(users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable order by user, the start of each user's group, and the user ids."""
    order = np.argsort(users, kind="stable")
    u = users[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.zeros(0, np.int64)
    return order, starts, u[starts]


def per_user_auc(users: np.ndarray, scores: np.ndarray,
                 labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, AUC) for every user with both a positive and a negative label.

    Ties between a positive and a negative score count 0 (eq. 9's strict ``>``): within a
    user, exposures are sorted by score with positives before negatives on equal scores, so
    the negatives counted before a positive are exactly those scored strictly lower.
    """
    users, scores, labels = _check(users, scores, labels)
    y = (labels > 0).astype(np.int64)
    order = np.lexsort((1 - y, scores, users))
    u, y = users[order], y[order]
    if len(u) == 0:
        return np.zeros(0, dtype=users.dtype), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    sizes = np.diff(np.r_[starts, len(u)])
    neg_before = np.cumsum(1 - y) - (1 - y)  # negatives before each position, all users
    neg_before = neg_before - np.repeat(neg_before[starts], sizes)
    pairs = np.add.reduceat(y * neg_before, starts)
    n_pos = np.add.reduceat(y, starts)
    n_neg = sizes - n_pos
    keep = (n_pos > 0) & (n_neg > 0)
    return u[starts][keep], pairs[keep] / (n_pos[keep] * n_neg[keep])


def precision_recall_at(users: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                        ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, P@K [U, len(ks)], R@K [U, len(ks)]) for users with at least one click."""
    users, scores, labels = _check(users, scores, labels)
    # Sort by user, then score descending, then label ascending (non-clicks first on ties).
    order = np.lexsort((labels, -scores, users))
    u, y = users[order], (labels[order] > 0).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.zeros(0, np.int64)
    pos_in_user = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    n_pos = np.add.reduceat(y, starts) if len(u) else np.zeros(0, np.int64)
    keep = n_pos > 0
    p = np.zeros((len(starts), len(ks)))
    r = np.zeros((len(starts), len(ks)))
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(u)]))
    for j, k in enumerate(ks):
        hits = np.bincount(group, weights=y * (pos_in_user < k), minlength=len(starts))
        p[:, j] = hits / k
        r[:, j] = hits / np.maximum(n_pos, 1)
    return u[starts][keep], p[keep], r[keep]


@dataclass(frozen=True)
class CandidateResult:
    """Per-user figures of one model under the candidate-ranking protocol."""

    auc_users: np.ndarray
    auc: np.ndarray
    pr_users: np.ndarray
    precision: np.ndarray  # [U, len(ks)]
    recall: np.ndarray
    ks: tuple[int, ...]
    n_exposures: int

    def metrics(self) -> dict[str, float]:
        out = {"auc": float(self.auc.mean()) if len(self.auc) else float("nan")}
        for j, k in enumerate(self.ks):
            p = float(self.precision[:, j].mean()) if len(self.pr_users) else float("nan")
            r = float(self.recall[:, j].mean()) if len(self.pr_users) else float("nan")
            out[f"p@{k}"], out[f"r@{k}"] = p, r
            out[f"f@{k}"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        return out

    def counts(self) -> dict[str, int]:
        return {"exposures": self.n_exposures, "auc_users": len(self.auc_users),
                "pr_users": len(self.pr_users)}

    def auc_frame(self) -> pl.DataFrame:
        return pl.DataFrame({"user_idx": self.auc_users.astype(np.int64), "auc": self.auc})


def evaluate_candidates(users: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                        ks: Sequence[int] = DEFAULT_KS) -> CandidateResult:
    """Per-user AUC and P/R@K of ``scores`` (float [N]) for exposures of ``users`` (int [N])
    with click ``labels`` (0/1 [N])."""
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise DataError(f"every K must be >= 1, got {ks}")
    au, auc = per_user_auc(users, scores, labels)
    pu, p, r = precision_recall_at(users, scores, labels, ks)
    return CandidateResult(au, auc, pu, p, r, ks, len(np.asarray(users)))


def _check(users, scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, scores, labels = (np.asarray(users), np.asarray(scores, dtype=np.float64),
                             np.asarray(labels))
    if not (len(users) == len(scores) == len(labels)):
        raise DataError(f"users, scores and labels differ in length: {len(users)}, "
                        f"{len(scores)}, {len(labels)}")
    if not np.isfinite(scores).all():
        raise DataError("scores hold NaN or infinite values", hint="check the model's output")
    return users, scores, labels
