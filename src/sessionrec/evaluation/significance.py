"""Bootstrap confidence intervals for metric means and for paired differences of two models.

Both functions resample *test cases*: single predictions, or — with ``cluster`` — whole
clusters (usually the test session of each prediction). Under the next-item protocol one
session gives several, correlated predictions, so resampling sessions is the honest choice;
resampling predictions then gives intervals that are too narrow.

A replicate's statistic is the mean over the predictions of the resampled clusters (a ratio
of resampled sums to resampled counts), the usual cluster bootstrap. Intervals are percentile
intervals. ``p_value`` is the two-sided percentile-bootstrap p-value for "the mean is 0":
``min(1, 2 * (1 + #replicates on the far side of 0) / (n_boot + 1))``, roughly the largest
``alpha`` at which the interval still contains 0. Treat it as a guide, not an exact test.

Replicates are drawn as index matrices in blocks (bounded memory, no Python loop over
predictions); a given ``seed`` and input always give the same result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sessionrec.errors import DataError

if TYPE_CHECKING:
    from sessionrec.evaluation.evaluator import EvalResult

# Gathered elements per block of replicates: 4M float64 + int64 indices ~ 64 MiB.
_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap estimate: the observed mean (or mean difference) and its interval."""

    estimate: float
    low: float
    high: float
    p_value: float
    n: int
    n_clusters: int
    n_boot: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ci(
    values: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    cluster: np.ndarray | None = None,
) -> BootstrapCI:
    """Percentile interval of the mean of per-prediction ``values`` (float [N]).

    ``cluster`` (int [N], e.g. the session of each prediction) resamples whole clusters.
    """
    v = _as_values(values, "values")
    return _bootstrap(v, n_boot, alpha, seed, cluster)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    cluster: np.ndarray | None = None,
) -> BootstrapCI:
    """Interval of ``mean(a - b)`` for two models' values on the *same* test cases.

    Args:
        a, b: float [N] per-prediction metric values (e.g. ``EvalResult.values("mrr@20")``),
            aligned prediction by prediction.
        cluster: optional int [N] cluster of each prediction (session index) to resample
            whole clusters.

    Returns:
        :class:`BootstrapCI` with ``estimate = mean(a) - mean(b)``.
    """
    va, vb = _as_values(a, "a"), _as_values(b, "b")
    if va.shape != vb.shape:
        raise DataError(f"paired values differ in length: {len(va)} and {len(vb)}")
    return _bootstrap(va - vb, n_boot, alpha, seed, cluster)


def compare_results(
    a: EvalResult,
    b: EvalResult,
    metric: str = "mrr@20",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    by_session: bool = True,
) -> BootstrapCI:
    """:func:`paired_bootstrap` of ``metric`` between two evaluations of the same test cases.

    ``by_session`` resamples whole test sessions (the default, see the module docstring).
    """
    if not np.array_equal(a.target_events, b.target_events):
        raise DataError(
            "the two results do not cover the same test targets",
            hint="evaluate both models on the same test split with the same protocol",
        )
    cluster = a.sessions if by_session else None
    return paired_bootstrap(a.values(metric), b.values(metric), n_boot, alpha, seed, cluster)


def _as_values(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) == 0:
        raise DataError(f"{name} is empty: nothing to bootstrap")
    if not np.isfinite(v).all():
        raise DataError(f"{name} holds NaN or infinite values")
    return v


def _bootstrap(
    v: np.ndarray, n_boot: int, alpha: float, seed: int, cluster: np.ndarray | None
) -> BootstrapCI:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if cluster is None:
        sums, counts = v, np.ones_like(v)
    else:
        c = np.asarray(cluster).reshape(-1)
        if len(c) != len(v):
            raise DataError(f"cluster has {len(c)} entries for {len(v)} values")
        _, inverse = np.unique(c, return_inverse=True)
        sums = np.bincount(inverse, weights=v)
        counts = np.bincount(inverse).astype(np.float64)
    n_clusters = len(sums)
    rng = np.random.default_rng(seed)
    block = max(1, min(int(n_boot), _BLOCK_ELEMENTS // n_clusters))
    stats = np.empty(int(n_boot), dtype=np.float64)
    for lo in range(0, int(n_boot), block):
        hi = min(lo + block, int(n_boot))
        idx = rng.integers(0, n_clusters, size=(hi - lo, n_clusters))  # [replicates, clusters]
        if cluster is None:
            stats[lo:hi] = sums[idx].mean(1)
        else:
            stats[lo:hi] = sums[idx].sum(1) / counts[idx].sum(1)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    far_side = min(int((stats <= 0).sum()), int((stats >= 0).sum()))
    p_value = min(1.0, 2.0 * (far_side + 1) / (int(n_boot) + 1))
    return BootstrapCI(
        estimate=float(v.mean()),
        low=float(low),
        high=float(high),
        p_value=p_value,
        n=len(v),
        n_clusters=n_clusters,
        n_boot=int(n_boot),
        alpha=float(alpha),
    )
