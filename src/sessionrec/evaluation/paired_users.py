"""Paired comparison of two models' per-user values: a t-test beside the bootstrap.

Seed 001 reports a t-test of per-user AUC against the best baseline; we give that (paired,
two-sided, :func:`scipy.stats.ttest_rel`) next to the project's paired bootstrap interval
(:func:`sessionrec.evaluation.significance.paired_bootstrap`) over the same users.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from sessionrec.errors import DataError
from sessionrec.evaluation.significance import paired_bootstrap


@dataclass(frozen=True)
class PairedTest:
    mean_a: float
    mean_b: float
    difference: float
    t: float
    p_value: float
    n: int
    boot_low: float
    boot_high: float
    boot_p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_t_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(t, two-sided p) of the paired t-test of ``a - b``."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or len(a) < 2:
        raise DataError(f"a paired t-test needs two equally long samples of >= 2 values "
                        f"(got {len(a)} and {len(b)})")
    if np.all(a == b):
        return 0.0, 1.0
    res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def compare_users(a: pl.DataFrame, b: pl.DataFrame, column: str = "auc", n_boot: int = 1000,
                  seed: int = 0) -> PairedTest:
    """Paired t-test and bootstrap of ``a[column] - b[column]`` over the users both have.

    ``a`` and ``b`` have ``user_idx`` and ``column``; a user missing from either is an error
    (both models must be scored on the same test exposures).
    """
    joined = a.join(b, on="user_idx", how="full", suffix="_b", coalesce=True)
    if joined[column].null_count() or joined[f"{column}_b"].null_count():
        raise DataError("the two runs do not cover the same users",
                        hint="compare runs on the same prepared data")
    va, vb = joined[column].to_numpy(), joined[f"{column}_b"].to_numpy()
    t, p = paired_t_test(va, vb)
    boot = paired_bootstrap(va, vb, n_boot=n_boot, seed=seed)
    return PairedTest(float(va.mean()), float(vb.mean()), float(va.mean() - vb.mean()), t, p,
                      len(va), boot.low, boot.high, boot.p_value)
