"""The simulated visitor's clicks on a recommendation list: position-biased, and only on
products the visitor really goes on to view (plus a little noise).

A list is shown in ``slots`` positions. The product at rank ``r`` (1 = top) is clicked with
probability

    base / r^eta    if the visitor views that product later in the held-out data
                    (in this session or a later one, optionally within ``horizon_days``);
    noise / r^eta   otherwise (a random, "wrong" click),

each position drawn on its own (a visitor may open several products, as in new tabs). The
replay does not change what the visitor views next: a click only says that the recommendation
led to a view the visitor made anyway. Every list draws ``slots`` uniforms, whatever the API
answered, so one visitor's later decisions do not shift when an answer is shorter.

Randomness is per visitor, seeded from the run's seed and the visitor id
(:func:`visitor_rng`): the outcome does not depend on concurrency or visiting order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sessionrec.errors import ConfigError
from sessionrec.experiments.visitors import stable_hash


@dataclass(frozen=True)
class ClickModel:
    base: float = 0.3          # click probability of a later-viewed product at rank 1
    eta: float = 1.0           # position bias: probabilities fall as 1 / rank^eta
    noise: float = 0.01        # click probability of any other product at rank 1
    horizon_days: float = 0.0  # a later view counts only within this many days (0: any)
    delay_s: float = 2.0       # a click follows its impression by this much (less if the
    #                            visitor's next step comes sooner)

    def __post_init__(self) -> None:
        for name in ("base", "noise"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"clicks.{name} must lie in [0, 1], got {value!r}")
        for name in ("eta", "horizon_days", "delay_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"clicks.{name} must not be negative, got "
                                  f"{getattr(self, name)!r}")

    @property
    def horizon_s(self) -> float | None:
        return self.horizon_days * 86_400 if self.horizon_days > 0 else None

    def probabilities(self, relevant: Sequence[bool]) -> np.ndarray:
        """Click probability of each shown position (rank 1 first)."""
        ranks = np.arange(1, len(relevant) + 1, dtype=np.float64)
        top = np.where(np.asarray(relevant, dtype=bool), self.base, self.noise)
        return top / ranks ** self.eta

    def clicked(self, uniforms: np.ndarray, relevant: Sequence[bool]) -> list[int]:
        """0-based positions clicked, given one uniform draw per position."""
        p = self.probabilities(relevant)
        return np.flatnonzero(np.asarray(uniforms[:len(p)]) < p).tolist()


def visitor_rng(seed: int, visitor_id: str) -> np.random.Generator:
    """The random generator of one visitor: the same for the same seed and id, anywhere."""
    return np.random.default_rng([seed, stable_hash(visitor_id)])
