"""MINI / MIDI / MAXI subsampling (seed 000, section 3.2 and Table 3.1).

The thesis fixes a number of products and an approximate number of users: products are drawn
with probability proportional to their number of events, every session keeps only the drawn
products (and survives if still long enough), and users with enough surviving sessions are
taken until the user target is reached. Here the same happens vectorised: the product draw is
a weighted sample without replacement (Efraimidis-Spirakis keys), and "take users until the
target is reached" is a seeded random permutation of the eligible users cut at the target.
Popularity is counted on training events only, so the draw knows nothing of the test period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sessionrec.data.filter import EventCodes, drop_light_users, drop_short_sessions
from sessionrec.data.split import TRAIN
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


def draw_units(n_units: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``n`` units (users, or sessions) taken from ``n_units`` sorted ones.

    "Take users until the target is reached" as a seeded permutation cut at the target; both
    engines call this on the same sorted list, so they take the same users.
    """
    return rng.permutation(n_units)[:n]


def subsample(
    codes: EventCodes,
    alive: np.ndarray,
    labels: np.ndarray,
    *,
    n_users: int | None,
    n_items: int | None,
    min_session_length: int,
    min_user_sessions: int,
    seed: int,
) -> np.ndarray:
    """The ``alive`` mask restricted to ``n_items`` products and about ``n_users`` users.

    ``labels`` are the session split labels (popularity is counted on train). Sessions shorter
    than ``min_session_length`` after dropping products are removed, then users with fewer
    than ``min_user_sessions`` sessions. Without users (session-only data) ``n_users`` counts
    sessions. The caller re-applies the support filters afterwards.
    """
    rng = np.random.default_rng(seed)
    alive = alive.copy()
    if n_items is not None:
        train = alive & (labels[codes.session] == TRAIN)
        popularity = np.bincount(codes.item[train], minlength=codes.n_items)
        candidates = np.flatnonzero(popularity)
        chosen = candidates[weighted_sample_without_replacement(popularity[candidates], n_items,
                                                                rng)]
        keep = np.zeros(codes.n_items, dtype=bool)
        keep[chosen] = True
        alive &= keep[codes.item]
        alive = drop_short_sessions(codes, alive, min_session_length)
        alive = drop_light_users(codes, alive, min_user_sessions)
    if n_users is not None:
        unit = codes.session if codes.session_user is None else codes.session_user[codes.session]
        units = np.unique(unit[alive])
        if len(units) < n_users:
            log.warning("subsample: only %d users/sessions qualify, fewer than the %d asked for",
                        len(units), n_users)
        taken = np.zeros(int(unit.max()) + 1, dtype=bool)
        taken[units[draw_units(len(units), n_users, rng)]] = True
        alive &= taken[unit]
    return alive
