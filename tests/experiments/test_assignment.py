"""Assignment: the hash, the split by holdout and weights, stickiness, the unit of a visitor."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from scipy import stats

from sessionrec.experiments import assignment
from sessionrec.experiments.assignment import HOLDOUT, assign, assignment_key, bucket, unit_of
from sessionrec.experiments.config import ExperimentConfig, VariantSpec


def config(weights: dict[str, float], holdout: float = 0.0, salt: str = "pepper",
           name: str = "exp") -> ExperimentConfig:
    variants = tuple(VariantSpec(n, "cooc", w) for n, w in weights.items())
    return ExperimentConfig(name, salt, "user", None, None, 14.0, holdout,
                            next(iter(weights)), 30.0, variants)


def test_bucket_is_the_first_8_bytes_of_sha256_of_salt_and_unit():
    digest = hashlib.sha256(b"pepper:user:42").digest()
    assert bucket("pepper", "user:42") == int.from_bytes(digest[:8], "big") / 2**64
    # Pinned (`printf 'pepper:user:42' | sha256sum` starts a8f2a79490c420e1): replicas and
    # later versions must agree with it, or units would change variant.
    assert bucket("pepper", "user:42") == 0xA8F2A79490C420E1 / 2**64
    assert bucket("salt", "user:42") != bucket("pepper", "user:42")


@pytest.mark.parametrize(("b", "expected"), [
    (0.0, HOLDOUT), (0.0999, HOLDOUT),      # the first 10 %: holdout
    (0.1, "a"),                             # x = 0
    (0.1 + 0.9 * 0.2 - 1e-9, "a"),          # x just below a's 0.2
    (0.1 + 0.9 * 0.2 + 1e-9, "b"),          # x = 0.2: b (c has no weight)
    (0.1 + 0.9 * 0.6 - 1e-9, "b"),
    (0.1 + 0.9 * 0.6 + 1e-9, "d"),
    (1 - 2**-64, "d"),
])
def test_split_by_holdout_then_cumulative_weights_in_file_order(monkeypatch, b, expected):
    monkeypatch.setattr(assignment, "bucket", lambda salt, unit: b)
    cfg = config({"a": 0.2, "b": 0.4, "c": 0.0, "d": 0.4}, holdout=0.1)
    assert assign(cfg, "user:1") == expected


def test_weights_a_hair_below_one_leave_no_gap(monkeypatch):
    monkeypatch.setattr(assignment, "bucket", lambda salt, unit: 1 - 2**-60)
    assert assign(config({"a": 0.5, "b": 0.5 - 5e-10}), "user:1") == "b"


def test_assignment_is_sticky_and_replicas_agree():
    units = [f"user:{i}" for i in range(200)]
    first = [assign(config({"a": 0.5, "b": 0.5}), u) for u in units]
    # Another replica: its own (equal) config object, asked in another order.
    replica = config({"a": 0.5, "b": 0.5})
    again = {u: assign(replica, u) for u in reversed(units)}
    assert first == [again[u] for u in units]
    assert set(first) == {"a", "b"}
    salted = [assign(config({"a": 0.5, "b": 0.5}, salt="other"), u) for u in units]
    assert salted != first  # a new salt is a new randomisation


def test_distribution_matches_weights_and_holdout_over_100k_units():
    cfg = config({"a": 0.2, "b": 0.3, "c": 0.5}, holdout=0.1)
    counts = Counter(assign(cfg, f"user:{i}") for i in range(100_000))
    shares = {HOLDOUT: 0.1, "a": 0.18, "b": 0.27, "c": 0.45}
    observed = [counts[name] for name in shares]
    expected = [100_000 * s for s in shares.values()]
    # The ids are fixed, so this p-value is too: a chi-square test that cannot be flaky.
    assert stats.chisquare(observed, expected).pvalue > 0.01
    assert abs(counts[HOLDOUT] / 100_000 - 0.1) < 0.005


@pytest.mark.parametrize(("unit", "ids", "expected"), [
    ("user", {"session_id": "s", "user_id": "u", "device_id": "d"}, "user:u"),
    ("user", {"session_id": "s", "device_id": "d", "linked_user": "u0"}, "user:u0"),
    ("user", {"session_id": "s", "device_id": "d"}, "device:d"),
    ("user", {"session_id": "s"}, "session:s"),
    ("user", {"session_id": None, "device_id": "d"}, "device:d"),
    ("session", {"session_id": "s", "user_id": "u", "device_id": "d"}, "session:s"),
    ("session", {"session_id": None, "user_id": "u"}, "user:u"),  # a purchase without session
])
def test_unit_of_a_visitor(unit, ids, expected):
    assert unit_of(unit, **ids) == expected


def test_a_visitor_without_any_id_has_no_unit():
    with pytest.raises(ValueError, match="needs a user, device or session id"):
        unit_of("user", None)


def test_kinds_keep_equal_ids_apart():
    assert unit_of("user", "7") != unit_of("user", None, user_id="7")
    assert assignment_key("user:7") == "assignment:user:7"
