"""Statistics of online experiments: variant-vs-control tests, Holm, SRM, power, mSPRT.

All KPIs are ratios of sums over *units* (``sum clicks / sum impressions``). One unit's
impressions are not independent (a keen clicker clicks many of them), so the unit, not the
impression, is the independent observation:

* :func:`delta_method_diff` — the delta method for a ratio of unit sums (Deng et al., "Applying
  the delta method in metric analytics", 2018): ``Var(R) ~= sum((y_i - R x_i)^2) /
  ((n - 1) n xbar^2)``; the two arms are independent, so the variances of the difference add.
  Its p-value (two-sided z-test) is the one the verdicts and Holm use.
* :func:`cluster_bootstrap_diff` — a unit-level (cluster) bootstrap as a check that needs no
  normal approximation: each replicate weighs every unit by an independent Poisson(1) count
  (the Poisson bootstrap; arms resampled independently), vectorised as a weight-matrix
  product, seeded. Percentile interval; p-value as in :mod:`sessionrec.evaluation.significance`.
* :func:`holm` — Holm's step-down adjustment. The report's family is every (variant, KPI)
  comparison it prints, so the family-wise error rate holds over every verdict.
* :func:`srm_check` — sample-ratio mismatch: chi-square goodness of fit of assigned units per
  arm against the configured shares; an alert at ``p < 0.001``.
* :func:`sample_size_two_proportions`, :func:`power_two_proportions`,
  :func:`mde_two_proportions` — planning (normal approximation, pooled variance under H0,
  Fleiss 1981 without continuity correction).
* :func:`msprt_p_values` — always-valid p-values (mixture SPRT with a normal mixture, Johari
  et al. 2017): peeking at them after every day does not inflate false positives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import optimize, stats

from sessionrec.errors import DataError
from sessionrec.evaluation.significance import BootstrapCI

# KPI name -> numerator column of the unit table (the denominator is always impressions).
KPI_NUMERATORS: dict[str, str] = {
    "ctr": "clicks",
    "conversion": "sales",
    "revenue_per_impression": "attributed_revenue",
    "same_session_conversion": "same_session_sales",
}
SRM_THRESHOLD = 0.001
# Poisson weights drawn per block of bootstrap replicates: 4M int64 ~ 32 MiB.
_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class RatioDiff:
    """``variant - control`` of a ratio metric, delta-method interval and z-test."""

    control: float
    variant: float
    diff: float
    se: float
    low: float
    high: float
    rel_diff: float | None   # variant / control - 1 (None when control is 0)
    rel_low: float | None
    rel_high: float | None
    p_value: float
    n_control: int           # units
    n_variant: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_and_variance(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """``R = sum(num) / sum(den)`` over units and its delta-method variance.

    Args:
        num, den: float [n_units] per-unit sums (e.g. clicks and impressions), n >= 2.
    """
    y, x = np.asarray(num, np.float64), np.asarray(den, np.float64)
    n = len(x)
    if n < 2:
        raise DataError(f"the delta method needs at least 2 units, got {n}")
    if x.sum() <= 0:
        raise DataError("the denominator (impressions) sums to 0: the ratio is undefined")
    ratio = y.sum() / x.sum()
    resid = y - ratio * x
    var = float((resid @ resid) / ((n - 1) * n * x.mean() ** 2))
    return float(ratio), var


def delta_method_diff(num_v: np.ndarray, den_v: np.ndarray, num_c: np.ndarray,
                      den_c: np.ndarray, alpha: float = 0.05) -> RatioDiff:
    """Delta-method difference ``R_v - R_c`` of two independent arms' ratio metrics.

    The relative difference ``R_v / R_c - 1`` gets the delta-method interval
    ``se = sqrt(Var_v / R_c^2 + R_v^2 Var_c / R_c^4)``.
    """
    _check_alpha(alpha)
    r_v, var_v = ratio_and_variance(num_v, den_v)
    r_c, var_c = ratio_and_variance(num_c, den_c)
    z = float(stats.norm.ppf(1 - alpha / 2))
    diff, se = r_v - r_c, math.sqrt(var_v + var_c)
    # se = 0: every unit has its arm's ratio exactly, so the difference is exact
    exact = 1.0 if diff == 0 else 0.0
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else exact
    rel = rel_low = rel_high = None
    if r_c > 0:
        rel = r_v / r_c - 1
        rel_se = math.sqrt(var_v / r_c**2 + r_v**2 * var_c / r_c**4)
        rel_low, rel_high = rel - z * rel_se, rel + z * rel_se
    return RatioDiff(control=r_c, variant=r_v, diff=diff, se=se, low=diff - z * se,
                     high=diff + z * se, rel_diff=rel, rel_low=rel_low, rel_high=rel_high,
                     p_value=p, n_control=len(np.asarray(den_c)),
                     n_variant=len(np.asarray(den_v)), alpha=alpha)


def _poisson_ratios(num: np.ndarray, den: np.ndarray, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """[n_boot, K] replicate ratios of the Poisson bootstrap of one arm."""
    sums = np.column_stack([den, num])  # [n_units, 1 + K]
    n = len(den)
    block = max(1, min(n_boot, _BLOCK_ELEMENTS // max(n, 1)))
    out = np.empty((n_boot, sums.shape[1] - 1))
    for lo in range(0, n_boot, block):
        hi = min(lo + block, n_boot)
        weights = rng.poisson(1.0, size=(hi - lo, n)).astype(np.float64)  # [replicates, units]
        totals = weights @ sums
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:hi] = totals[:, 1:] / totals[:, :1]  # an empty resample gives NaN
    return out


def _arrays(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(den, np.float64)
    if d.sum() <= 0:
        raise DataError("an arm has no impressions: the ratio is undefined")
    return np.asarray(num, np.float64).reshape(len(d), -1), d


def _percentile_diffs(reps: np.ndarray, observed: np.ndarray, n_units: int,
                      alpha: float) -> list[BootstrapCI]:
    results = []
    for k in range(reps.shape[1]):
        r = reps[:, k][np.isfinite(reps[:, k])]
        low, high = np.quantile(r, [alpha / 2, 1 - alpha / 2])
        far_side = min(int((r <= 0).sum()), int((r >= 0).sum()))
        results.append(BootstrapCI(
            estimate=float(observed[k]), low=float(low), high=float(high),
            p_value=min(1.0, 2.0 * (far_side + 1) / (len(r) + 1)),
            n=n_units, n_clusters=n_units, n_boot=len(r), alpha=alpha,
        ))
    return results


def cluster_bootstrap_diff(num_v: np.ndarray, den_v: np.ndarray, num_c: np.ndarray,
                           den_c: np.ndarray, n_boot: int = 2000, alpha: float = 0.05,
                           seed: int = 0) -> list[BootstrapCI]:
    """Unit-level Poisson bootstrap of ``R_v - R_c`` for one or several ratio metrics.

    Args:
        num_v, num_c: float [n_units] or [n_units, K] numerators per unit (K metrics that
            share the denominator, resampled together).
        den_v, den_c: float [n_units] denominators per unit (impressions).

    Returns:
        One :class:`BootstrapCI` per metric (``estimate`` the observed difference; ``n`` and
        ``n_clusters`` the units of both arms). Replicates whose resample is empty are dropped.
    """
    _check_alpha(alpha)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    (nv, dv), (nc, dc) = _arrays(num_v, den_v), _arrays(num_c, den_c)
    rng = np.random.default_rng(seed)
    reps = _poisson_ratios(nv, dv, int(n_boot), rng) - _poisson_ratios(nc, dc, int(n_boot), rng)
    observed = nv.sum(0) / dv.sum() - nc.sum(0) / dc.sum()
    return _percentile_diffs(reps, observed, len(dv) + len(dc), alpha)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (same order as ``p_values``)."""
    p = np.asarray(p_values, np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch check: assigned units per arm against the configured shares."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    dof: int
    p_value: float
    threshold: float
    mismatch: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def srm_check(observed: Mapping[str, int], shares: Mapping[str, float],
              threshold: float = SRM_THRESHOLD) -> SRMResult:
    """Chi-square goodness of fit of unit counts ``observed`` to ``shares`` (summing to 1).

    An arm missing from ``observed`` has 0 units; an arm of ``observed`` not in ``shares`` is
    an error. ``mismatch`` is ``p_value < threshold``.
    """
    unknown = set(observed) - set(shares)
    if unknown:
        raise DataError(f"units assigned to arms {sorted(unknown)} that the config does not "
                        f"have (arms: {sorted(shares)})")
    total = sum(int(observed.get(a, 0)) for a in shares)
    if total == 0:
        raise DataError("no assigned units: the sample-ratio check needs assignment rows")
    obs = {a: int(observed.get(a, 0)) for a in shares}
    exp = {a: float(s) * total for a, s in shares.items()}
    live = [a for a in shares if exp[a] > 0]
    if any(obs[a] > 0 for a in shares if exp[a] == 0):
        chi2, p = math.inf, 0.0
    elif len(live) < 2:
        chi2, p = 0.0, 1.0
    else:
        res = stats.chisquare([obs[a] for a in live], [exp[a] for a in live])
        chi2, p = float(res.statistic), float(res.pvalue)
    return SRMResult(observed=obs, expected=exp, chi2=chi2, dof=max(len(live) - 1, 0),
                     p_value=p, threshold=threshold, mismatch=p < threshold)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _check_rate(name: str, p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {p}")


def power_two_proportions(baseline: float, treated: float, n_per_arm: float,
                          alpha: float = 0.05) -> float:
    """Power of the two-sided two-proportion z-test with ``n_per_arm`` units in each arm."""
    _check_rate("baseline", baseline)
    _check_rate("treated", treated)
    _check_alpha(alpha)
    pbar = (baseline + treated) / 2
    z = stats.norm.ppf(1 - alpha / 2)
    sd0 = math.sqrt(2 * pbar * (1 - pbar))
    sd1 = math.sqrt(baseline * (1 - baseline) + treated * (1 - treated))
    return float(stats.norm.cdf((abs(treated - baseline) * math.sqrt(n_per_arm) - z * sd0) / sd1))


def sample_size_two_proportions(baseline: float, mde: float, alpha: float = 0.05,
                                power: float = 0.8, relative: bool = False,
                                design_effect: float = 1.0) -> int:
    """Units per arm to detect ``baseline -> baseline + mde`` (``mde`` relative if
    ``relative``) with a two-sided test at ``alpha`` and the given ``power``:
    ``n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{power} sqrt(p1 q1 + p2 q2))^2 / (p2 - p1)^2``,
    times ``design_effect`` (``1 + (m - 1) ICC`` when a unit contributes m correlated trials).
    """
    treated = baseline * (1 + mde) if relative else baseline + mde
    _check_rate("baseline", baseline)
    _check_rate("baseline + mde", treated)
    _check_alpha(alpha)
    _check_rate("power", power)
    if treated == baseline:
        raise ValueError("mde must not be 0")
    pbar = (baseline + treated) / 2
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    root = (za * math.sqrt(2 * pbar * (1 - pbar))
            + zb * math.sqrt(baseline * (1 - baseline) + treated * (1 - treated)))
    return math.ceil(design_effect * root**2 / (treated - baseline) ** 2)


def mde_two_proportions(baseline: float, n_per_arm: float, alpha: float = 0.05,
                        power: float = 0.8, design_effect: float = 1.0) -> float:
    """Smallest absolute increase of ``baseline`` detectable with ``n_per_arm`` units per arm
    (the inverse of :func:`sample_size_two_proportions`, solved numerically)."""
    _check_rate("baseline", baseline)
    _check_rate("power", power)
    n_eff = n_per_arm / design_effect
    top = 1 - baseline - 1e-12
    if power_two_proportions(baseline, baseline + top, n_eff, alpha) < power:
        raise ValueError(f"{n_per_arm} units per arm cannot reach power {power} from "
                         f"baseline {baseline}")
    return float(optimize.brentq(
        lambda d: power_two_proportions(baseline, baseline + d, n_eff, alpha) - power,
        1e-12, top, xtol=1e-12))


def msprt_p_values(estimates: Sequence[float], variances: Sequence[float],
                   tau2: float) -> np.ndarray:
    """Always-valid p-values of ``H0: effect = 0`` after each look.

    Args:
        estimates, variances: float [looks] the cumulative estimate (a difference) and its
            variance at each look (e.g. each day's delta-method result).
        tau2: variance of the normal mixture over the alternative effect (the squared effect
            size one expects; larger favours large effects).

    Returns:
        float [looks] ``p_k = min(1, min_{j<=k} 1 / Lambda_j)`` with
        ``Lambda = sqrt(V / (V + tau2)) exp(tau2 d^2 / (2 V (V + tau2)))``.
    """
    d, v = np.asarray(estimates, np.float64), np.asarray(variances, np.float64)
    if tau2 <= 0:
        raise ValueError(f"tau2 must be positive, got {tau2}")
    if (v <= 0).any():
        raise ValueError("variances must be positive")
    log_lambda = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
    return np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lambda)))


@dataclass(frozen=True)
class Comparison:
    """One KPI of one variant against control."""

    kpi: str
    variant: str
    control: str
    delta: RatioDiff
    bootstrap: BootstrapCI | None
    p_holm: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        delta = self.delta.to_dict()
        values = {"control_value": delta.pop("control"), "variant_value": delta.pop("variant")}
        return {"kpi": self.kpi, "variant": self.variant, "control": self.control, **values,
                **delta, "p_holm": self.p_holm, "significant": self.significant,
                "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None}


def _arm(units: pl.DataFrame, variant: str, kpis: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    arm = units.filter(pl.col("variant") == variant)
    arm = arm.filter((pl.col("impressions") + pl.col("clicks") + pl.col("sales")) > 0)
    den = arm["impressions"].cast(pl.Float64).to_numpy()
    if den.sum() <= 0:
        raise DataError(f"variant {variant!r} has no impressions: CTR and conversion are "
                        "undefined", hint="check that the shop reports impressions for it")
    if len(den) < 2:
        raise DataError(f"variant {variant!r} has {len(den)} unit with impressions; the "
                        "unit-level tests need at least 2")
    num = arm.select([pl.col(KPI_NUMERATORS[k]).cast(pl.Float64) for k in kpis]).to_numpy()
    return num, den


def compare_to_control(units: pl.DataFrame, control: str, variants: Sequence[str],
                       kpis: Sequence[str] = ("ctr", "conversion"), alpha: float = 0.05,
                       n_boot: int = 2000, seed: int = 0,
                       holm_family: str = "all") -> list[Comparison]:
    """Every KPI of every variant against ``control``, on the unit table of
    :func:`sessionrec.experiments.kpis.unit_kpis`.

    The delta-method p-values are Holm-adjusted over all comparisons (``holm_family="all"``)
    or per KPI across variants (``"kpi"``); ``significant`` is ``p_holm < alpha``.
    ``n_boot = 0`` skips the bootstrap; control's replicates are shared by all variants.
    Raises :class:`DataError` when an arm lacks
    impressions or units.
    """
    unknown = [k for k in kpis if k not in KPI_NUMERATORS]
    if unknown:
        raise ValueError(f"unknown KPIs {unknown}; known: {list(KPI_NUMERATORS)}")
    if holm_family not in ("all", "kpi"):
        raise ValueError(f"holm_family must be 'all' or 'kpi', got {holm_family!r}")
    num_c, den_c = _arm(units, control, kpis)
    # control's replicates are drawn once and shared by every variant (independent streams)
    reps_c = (_poisson_ratios(num_c, den_c, n_boot, np.random.default_rng([seed, 0]))
              if n_boot > 0 else None)
    observed_c = num_c.sum(0) / den_c.sum()
    rows: list[tuple[str, str, RatioDiff, BootstrapCI | None]] = []
    for i, variant in enumerate((v for v in variants if v != control), start=1):
        num_v, den_v = _arm(units, variant, kpis)
        boots: list[BootstrapCI | None] = [None] * len(kpis)
        if reps_c is not None:
            reps_v = _poisson_ratios(num_v, den_v, n_boot, np.random.default_rng([seed, i]))
            boots = list(_percentile_diffs(reps_v - reps_c, num_v.sum(0) / den_v.sum()
                                           - observed_c, len(den_v) + len(den_c), alpha))
        for k, kpi in enumerate(kpis):
            delta = delta_method_diff(num_v[:, k], den_v, num_c[:, k], den_c, alpha)
            rows.append((kpi, variant, delta, boots[k]))
    p = np.array([r[2].p_value for r in rows])
    adjusted = np.empty(len(rows))
    families = [None] if holm_family == "all" else list(kpis)
    for family in families:
        idx = [j for j, r in enumerate(rows) if family is None or r[0] == family]
        adjusted[idx] = holm(p[idx])
    return [Comparison(kpi=kpi, variant=variant, control=control, delta=delta, bootstrap=boot,
                       p_holm=float(adj), significant=bool(adj < alpha))
            for (kpi, variant, delta, boot), adj in zip(rows, adjusted, strict=True)]
