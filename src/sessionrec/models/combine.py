"""Score combinations for hybrid models: per-case normalisation, weighted sum, cascade.

Pure functions on score matrices ``[B, n_items]`` (one row per case). Models score on
different scales (a kNN score is a sum of similarities, a neural score a logit), so each
component's row is first **normalised per case**:

* ``minmax``: ``(s - min) / (max - min)`` (a constant row becomes 0);
* ``max``: ``s / max`` (for non-negative scores such as kNN sums; Jannach & Ludewig 2017);
* ``softmax``: ``exp(s) / Σ exp(s)`` (the probabilities of a model trained with softmax
  cross-entropy);
* ``none``: the raw scores.

**weighted** (Jannach & Ludewig, RecSys 2017, the best hybrid there): ``Σ_k w_k norm_k(s_k)``.

**cascade** (ibid.; Burke 2002): the first component's ``depth`` best items that it scores
above its lowest score come first, in its order, ties broken by the cascade of the remaining
components; every other item follows in the order of that remaining cascade. A kNN model that
scores only the items of its neighbours thus keeps its list and the next model fills (and
breaks ties within) the rest of the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sessionrec.errors import ConfigError

NORMALISATIONS = ("minmax", "max", "softmax", "none")


def normalise(scores: torch.Tensor, how: str) -> torch.Tensor:
    """float64 [B, n]: ``scores`` normalised per row (see the module docstring)."""
    s = scores.double()
    if how == "minmax":
        lo = s.min(dim=1, keepdim=True).values
        span = s.max(dim=1, keepdim=True).values - lo
        return torch.where(span > 0, (s - lo) / span.clamp_min(1e-300), torch.zeros_like(s))
    if how == "max":
        top = s.max(dim=1, keepdim=True).values
        return torch.where(top > 0, s / top.clamp_min(1e-300), s)
    if how == "softmax":
        return torch.softmax(s, dim=1)
    if how == "none":
        return s
    raise ConfigError(f"unknown normalisation {how!r}; valid: {', '.join(NORMALISATIONS)}")


def weighted(normalised: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """float64 [B, n]: ``Σ_k weights[k] * normalised[k]``."""
    if len(normalised) != len(weights):
        raise ConfigError(f"{len(weights)} weights for {len(normalised)} components")
    out = None
    for s, w in zip(normalised, weights, strict=True):
        if not w:
            continue
        if out is None:
            out = s * float(w)
        else:
            out.add_(s, alpha=float(w))  # in place: one [B, n] buffer per call, not one per term
    return torch.zeros_like(normalised[0]) if out is None else out


def _lexicographic_position(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """int64 [B, n]: each item's 0-based position when sorted by ``first`` then ``second``
    (both descending)."""
    by_second = torch.sort(second, dim=1, descending=True, stable=True).indices
    by_first = torch.sort(first.gather(1, by_second), dim=1, descending=True,
                          stable=True).indices
    order = by_second.gather(1, by_first)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return position


def cascade(scores: Sequence[torch.Tensor], depth: int) -> torch.Tensor:
    """float64 [B, n] in [0, 1]: the cascade of ``scores`` (raw scores, first model first).

    ``depth`` = how many of a component's best items it places before the next component
    (0: every item it scores above its row minimum).
    """
    if depth < 0:
        raise ConfigError(f"cascade depth must be >= 0, got {depth}")
    rest = normalise(scores[-1], "minmax")
    for s in reversed(scores[:-1]):
        s = s.double()
        picked = s > s.min(dim=1, keepdim=True).values
        if depth:
            k = min(depth, s.shape[1])
            top = torch.zeros_like(picked)
            top.scatter_(1, torch.topk(s, k, dim=1).indices, True)
            picked &= top
        n = s.shape[1]
        key = 1.0 - _lexicographic_position(s, rest).double() / n  # (0, 1], larger first
        rest = torch.where(picked, 2.0 + key, rest) / 3.0
    return rest


def pessimistic_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """int64 [B]: 1-based rank of each row's target, ties counted against it."""
    target_scores = scores.gather(1, targets.view(-1, 1))
    return (scores >= target_scores).sum(dim=1)
