"""Deterministic, sticky assignment of units (users, devices, sessions) to variants.

A unit's bucket is a hash of the experiment's salt and the unit id::

    bucket = int.from_bytes(sha256(f"{salt}:{unit_id}").digest()[:8]) / 2**64   in [0, 1)

The first ``holdout`` share of buckets is the pseudo-variant ``"holdout"`` (no recommendations);
the rest is split by the variants' cumulative weights in file order. Nothing is stored: every
API replica computes the same variant for the same unit, for as long as the salt stays.

Which id is the unit (the thesis's LastLoggedInUserId logic, for ``unit = "user"``): the user
id when the visitor is logged in; else the last user who logged in on the visitor's device,
when known; else the device id; else the session id. So a returning anonymous visitor keeps
the variant of the user their device links to. With ``unit = "session"`` every session is a
unit of its own. Unit ids carry their kind (``user:7``, ``device:d-1``, ``session:s-9``) so a
user and a session that happen to share an id stay two units.
"""

from __future__ import annotations

import functools
import hashlib

from sessionrec.experiments.config import HOLDOUT, ExperimentConfig

__all__ = ["HOLDOUT", "assign", "assignment_key", "bucket", "unit_of"]


def bucket(salt: str, unit_id: str) -> float:
    """The unit's position in [0, 1) (first 8 bytes of SHA-256 of ``salt:unit_id``)."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@functools.lru_cache(maxsize=64)
def _bounds(config: ExperimentConfig) -> tuple[tuple[float, str], ...]:
    """(cumulative weight, variant) of the variants that get traffic, in file order."""
    out, total = [], 0.0
    for v in config.variants:
        if v.weight > 0:
            total += v.weight
            out.append((total, v.name))
    return tuple(out)


def assign(config: ExperimentConfig, unit_id: str) -> str:
    """The variant of ``unit_id`` (or ``"holdout"``), ignoring the experiment's time window."""
    b = bucket(config.salt, unit_id)
    if b < config.holdout:
        return HOLDOUT
    x = (b - config.holdout) / (1.0 - config.holdout)
    bounds = _bounds(config)
    for upper, name in bounds:
        if x < upper:
            return name
    return bounds[-1][1]  # weights summing to 1 - 1e-9 leave a sliver at the top


def unit_of(unit: str, session_id: str | None, user_id: str | None = None,
            device_id: str | None = None, linked_user: str | None = None) -> str:
    """The unit id of a visitor (see the module docstring).

    ``unit``: the experiment's unit (``"user"`` or ``"session"``); ``linked_user``: the last
    user who logged in on ``device_id``, if known. With ``unit = "session"`` a request without
    a session id (a purchase) falls back to the user, then the device.
    """
    if unit == "session" and session_id:
        return f"session:{session_id}"
    if user_id:
        return f"user:{user_id}"
    if linked_user:
        return f"user:{linked_user}"
    if device_id:
        return f"device:{device_id}"
    if session_id:
        return f"session:{session_id}"
    raise ValueError("a unit needs a user, device or session id")


def assignment_key(unit_id: str) -> str:
    """Idempotency key of a unit's assignment row: every replica derives the same one, so a
    unit is logged once however many replicas see it first."""
    return f"assignment:{unit_id}"
