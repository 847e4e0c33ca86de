"""A/A checks: does the analysis keep its promise of 5% false positives, and does SRM fire?

:func:`simulate_aa` draws many synthetic A/A experiments in which nothing differs between the
arms. Each unit gets a click propensity from a Beta distribution (mean ``ctr``,
``concentration`` = a + b, so impressions of one unit are correlated: intra-unit correlation
``1 / (concentration + 1)``) and a geometric number of impressions (mean
``mean_impressions``); units are split 50/50 by the production assignment hash
(:func:`sessionrec.experiments.assignment.bucket`) with a fresh salt per experiment. Every
experiment is tested twice at ``alpha``:

* with the unit-level delta method the report uses (:func:`stats.delta_method_diff`): its
  false-positive count should lie in the central 95% range of ``Binomial(n, alpha)``;
* with a naive two-proportion z-test over impressions, as if they were independent: it
  over-rejects, because the clustering inflates the variance by the design effect.

:func:`srm_demo` assigns units with a deliberately skewed hash threshold (52/48) and shows the
sample-ratio check fire, next to a fair 50/50 split that does not.

:func:`simulate_peeking` looks at each A/A experiment once a day: stopping at the first daily
p < alpha inflates false positives well past alpha, the always-valid mSPRT p-values do not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from sessionrec.experiments.assignment import bucket
from sessionrec.experiments.stats import (
    SRM_THRESHOLD,
    SRMResult,
    delta_method_diff,
    msprt_p_values,
    srm_check,
)


@dataclass(frozen=True)
class AAResult:
    """False positives of ``n_experiments`` A/A experiments (counts and rates)."""

    n_experiments: int
    n_units: int
    alpha: float
    false_positives: int
    false_positive_rate: float
    binomial_low: int        # central 95% range of Binomial(n_experiments, alpha)
    binomial_high: int
    within_range: bool
    naive_false_positives: int
    naive_false_positive_rate: float
    naive_within_range: bool
    srm_alarms: int          # fair 50/50 splits flagged by the SRM check (p < 0.001)
    mean_impressions_per_unit: float
    ctr: float
    concentration: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One paragraph in plain words."""
        return (
            f"{self.n_experiments} A/A experiments of {self.n_units:,} units "
            f"(~{self.mean_impressions_per_unit:.1f} impressions per unit, CTR {self.ctr:.1%}, "
            f"intra-unit correlation {1 / (self.concentration + 1):.2f}): the unit-level delta "
            f"method rejected at alpha {self.alpha:g} in {self.false_positives} "
            f"({self.false_positive_rate:.1%}), "
            f"{'within' if self.within_range else 'OUTSIDE'} the 95% binomial range "
            f"{self.binomial_low}-{self.binomial_high}; a naive impression-level z-test "
            f"rejected in {self.naive_false_positives} ({self.naive_false_positive_rate:.1%}). "
            f"The SRM check fired on {self.srm_alarms} of the fair splits."
        )


def binomial_range(n: int, p: float, level: float = 0.95) -> tuple[int, int]:
    """Central ``level`` interval of ``Binomial(n, p)`` (e.g. 200, 0.05 -> (4, 16))."""
    low, high = stats.binom.interval(level, n, p)
    return int(low), int(high)


def hash_split(salt: str, n_units: int, share_a: float = 0.5) -> np.ndarray:
    """bool [n_units]: unit ``i`` (id ``user:i``) is in arm A when its bucket < ``share_a``."""
    return np.fromiter((bucket(salt, f"user:{i}") < share_a for i in range(n_units)),
                       dtype=bool, count=n_units)


def naive_impression_p_value(clicks_a: float, imps_a: float, clicks_b: float,
                             imps_b: float) -> float:
    """Two-sided pooled two-proportion z-test treating every impression as independent."""
    pooled = (clicks_a + clicks_b) / (imps_a + imps_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / imps_a + 1 / imps_b))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(clicks_b / imps_b - clicks_a / imps_a) / se))


def simulate_aa(n_experiments: int = 200, n_units: int = 2000, alpha: float = 0.05,
                ctr: float = 0.05, concentration: float = 10.0, mean_impressions: float = 10.0,
                seed: int = 0) -> AAResult:
    """Run ``n_experiments`` synthetic A/A experiments (see the module docstring)."""
    if n_experiments < 1 or n_units < 4:
        raise ValueError("need at least 1 experiment of at least 4 units")
    rng = np.random.default_rng(seed)
    shape = (n_experiments, n_units)
    impressions = rng.geometric(1.0 / mean_impressions, size=shape).astype(np.float64)
    propensity = rng.beta(ctr * concentration, (1 - ctr) * concentration, size=shape)
    clicks = rng.binomial(impressions.astype(np.int64), propensity).astype(np.float64)
    rejected = naive_rejected = srm_alarms = 0
    for e in range(n_experiments):
        in_a = hash_split(f"aa-{seed}-{e}", n_units)
        x, y = impressions[e], clicks[e]
        delta = delta_method_diff(y[~in_a], x[~in_a], y[in_a], x[in_a], alpha)
        rejected += delta.p_value < alpha
        naive = naive_impression_p_value(y[in_a].sum(), x[in_a].sum(), y[~in_a].sum(),
                                         x[~in_a].sum())
        naive_rejected += naive < alpha
        srm = srm_check({"a": int(in_a.sum()), "b": int((~in_a).sum())}, {"a": 0.5, "b": 0.5})
        srm_alarms += srm.mismatch
    low, high = binomial_range(n_experiments, alpha)
    return AAResult(
        n_experiments=n_experiments, n_units=n_units, alpha=alpha,
        false_positives=int(rejected), false_positive_rate=rejected / n_experiments,
        binomial_low=low, binomial_high=high, within_range=bool(low <= rejected <= high),
        naive_false_positives=int(naive_rejected),
        naive_false_positive_rate=naive_rejected / n_experiments,
        naive_within_range=bool(low <= naive_rejected <= high),
        srm_alarms=int(srm_alarms), mean_impressions_per_unit=float(impressions.mean()),
        ctr=ctr, concentration=concentration,
    )


@dataclass(frozen=True)
class SRMDemo:
    """The SRM check on a deliberately skewed split and on a fair one."""

    skewed: SRMResult
    balanced: SRMResult
    skewed_share: float

    def to_dict(self) -> dict[str, Any]:
        return {"skewed_share": self.skewed_share, "skewed": self.skewed.to_dict(),
                "balanced": self.balanced.to_dict()}

    def summary(self) -> str:
        s, b = self.skewed, self.balanced
        return (f"Sample-ratio check (alert at p < {s.threshold:g}): a {self.skewed_share:.0%}/"
                f"{1 - self.skewed_share:.0%} split of {sum(s.observed.values()):,} units "
                f"({s.observed['a']:,} vs {s.observed['b']:,}) gives chi2 = {s.chi2:.1f}, "
                f"p = {s.p_value:.2g}: {'fires' if s.mismatch else 'does NOT fire'}; a fair "
                f"50/50 split ({b.observed['a']:,} vs {b.observed['b']:,}) gives "
                f"p = {b.p_value:.2g}: {'fires' if b.mismatch else 'silent'}.")


def srm_demo(n_units: int = 20_000, skewed_share: float = 0.52, salt: str = "srm-demo",
             threshold: float = SRM_THRESHOLD) -> SRMDemo:
    """Split ``n_units`` by the assignment hash at ``skewed_share`` and at 0.5, and check
    both against the configured 50/50."""
    def check(share: float) -> SRMResult:
        in_a = hash_split(salt, n_units, share)
        return srm_check({"a": int(in_a.sum()), "b": int((~in_a).sum())},
                         {"a": 0.5, "b": 0.5}, threshold)

    return SRMDemo(skewed=check(skewed_share), balanced=check(0.5), skewed_share=skewed_share)


@dataclass(frozen=True)
class PeekingResult:
    """False positives of A/A experiments looked at after every one of ``looks`` days."""

    n_experiments: int
    looks: int
    alpha: float
    fixed_horizon: int   # delta-method test once, at the last look
    peeking: int         # delta-method test at every look, stop at the first p < alpha
    always_valid: int    # mSPRT p-value at every look, stop at the first p < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        n = self.n_experiments
        return (f"Peeking daily for {self.looks} days at {n} A/A experiments (alpha "
                f"{self.alpha:g}): the fixed-horizon test rejects {self.fixed_horizon} "
                f"({self.fixed_horizon / n:.1%}) at the end, stopping at the first daily "
                f"p < alpha rejects {self.peeking} ({self.peeking / n:.1%}), the always-valid "
                f"mSPRT p-values reject {self.always_valid} ({self.always_valid / n:.1%}).")


def simulate_peeking(n_experiments: int = 200, n_units: int = 2000, looks: int = 14,
                     alpha: float = 0.05, ctr: float = 0.05, concentration: float = 10.0,
                     mean_impressions: float = 10.0, relative_tau: float = 0.1,
                     seed: int = 0) -> PeekingResult:
    """A/A experiments whose units see ``Poisson(mean_impressions / looks)`` impressions a day,
    tested after every day on the cumulative data (see :class:`PeekingResult`). The mSPRT
    mixture scale is ``relative_tau * ctr``."""
    rng = np.random.default_rng(seed)
    shape = (n_experiments, n_units, looks)
    impressions = rng.poisson(mean_impressions / looks, size=shape)
    propensity = rng.beta(ctr * concentration, (1 - ctr) * concentration,
                          size=shape[:2])[..., None]
    clicks = rng.binomial(impressions, propensity)
    cum_x, cum_y = impressions.cumsum(2).astype(np.float64), clicks.cumsum(2).astype(np.float64)
    tau2 = (relative_tau * ctr) ** 2
    fixed = peeking = always_valid = 0
    for e in range(n_experiments):
        in_a = hash_split(f"peek-{seed}-{e}", n_units)
        p_daily, diffs, variances = [], [], []
        for d in range(looks):
            x, y = cum_x[e, :, d], cum_y[e, :, d]
            seen = x > 0
            a, b = seen & in_a, seen & ~in_a
            if a.sum() < 2 or b.sum() < 2:
                continue
            r = delta_method_diff(y[b], x[b], y[a], x[a], alpha)
            p_daily.append(r.p_value)
            if r.se > 0:
                diffs.append(r.diff)
                variances.append(r.se**2)
        fixed += bool(p_daily) and p_daily[-1] < alpha
        peeking += bool(p_daily) and min(p_daily) < alpha
        always_valid += bool(diffs) and msprt_p_values(diffs, variances, tau2).min() < alpha
    return PeekingResult(n_experiments=n_experiments, looks=looks, alpha=alpha,
                         fixed_horizon=int(fixed), peeking=int(peeking),
                         always_valid=int(always_valid))
