"""MINI / MIDI / MAXI subsampling (seed 000, section 3.2 and Table 3.1).

The thesis fixes a number of products and an approximate number of users: products are drawn
with probability proportional to their number of events, every session keeps only the drawn
products (and survives if still long enough), and users with enough surviving sessions are
taken until the user target is reached. Here the same happens vectorised: the product draw is
a weighted sample without replacement (Efraimidis-Spirakis keys), and "take users until the
target is reached" is a seeded random permutation of the eligible users cut at the target.
Popularity is counted on training rows only, so the draw knows nothing of the test period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from sessionrec.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """Target size of a subsample; ``None`` means keep everything."""

    users: int | None
    items: int | None


PRESETS: dict[str, Preset] = {
    # Sizes of seed 000's Table 3.1; MAXI is "the complete dataset" after filtering.
    "MINI": Preset(users=23, items=161),
    "MIDI": Preset(users=15_242, items=42_103),
    "MAXI": Preset(users=None, items=None),
}


def preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); ConfigError listing the choices."""
    try:
        return PRESETS[name.upper()]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def weighted_sample_without_replacement(
    weights: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of ``n`` draws without replacement, each draw with probability ∝ weight.

    Efraimidis & Spirakis (2006): key_i = log(u_i) / w_i, take the ``n`` largest keys.
    Zero weights are never drawn while positive ones remain.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if n >= len(weights):
        return np.arange(len(weights))
    u = rng.random(len(weights))
    with np.errstate(divide="ignore"):
        keys = np.log(u) / weights
    return np.argpartition(-keys, n - 1)[:n]


def subsample(
    df: pl.DataFrame,
    *,
    n_users: int | None,
    n_items: int | None,
    min_session_length: int,
    min_user_sessions: int,
    user_aware: bool,
    seed: int,
) -> pl.DataFrame:
    """Keep ``n_items`` products (∝ train popularity) and about ``n_users`` users.

    ``df`` holds labelled (``split``) sessionized events. Sessions shorter than
    ``min_session_length`` after dropping products are removed, then users with fewer than
    ``min_user_sessions`` sessions. In a session-only run (no users) ``n_users`` counts
    sessions instead. The caller re-applies the support filters afterwards.
    """
    rng = np.random.default_rng(seed)
    if n_items is not None:
        pop = (df.filter(pl.col("split") == "train").group_by("item_id").len()
               .sort("item_id"))
        chosen = weighted_sample_without_replacement(pop["len"].to_numpy(), n_items, rng)
        keep = pop["item_id"].gather(np.sort(chosen))
        df = df.filter(pl.col("item_id").is_in(keep.implode()))
        df = df.filter(pl.len().over("session_id") >= min_session_length)
        if user_aware:
            df = df.filter(pl.col("session_id").n_unique().over("user_id") >= min_user_sessions)
    if n_users is not None:
        unit = "user_id" if user_aware else "session_id"
        units = df.select(pl.col(unit).unique(maintain_order=True))[unit].sort()
        if len(units) < n_users:
            log.warning("subsample: only %d %ss qualify, fewer than the %d asked for",
                        len(units), unit.removesuffix("_id"), n_users)
        order = rng.permutation(len(units))[:n_users]
        df = df.filter(pl.col(unit).is_in(units.gather(np.sort(order)).implode()))
    return df
