"""The vectorised baselines against direct, loop-by-loop implementations of their definitions.

Random sessions (with repeated items and tied timestamps) are scored both ways; the
references below are written for clarity, straight from the docstrings' formulas.
"""

import math
from collections import defaultdict

import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import (
    STAN,
    AssociationRules,
    Cooccurrence,
    ItemKNN,
    MarkovChain,
    SequentialRules,
    SessionKNN,
    VectorSessionKNN,
)

N_ITEMS = 30


def random_data(seed: int) -> tuple[list[list[int]], list[int], Sessions]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, N_ITEMS + 1)
    sessions = [[int(i) for i in rng.choice(N_ITEMS, size=rng.integers(1, 9), p=p / p.sum())]
                for _ in range(120)]
    times = [int(t) for t in rng.integers(0, 20, size=len(sessions)) * 3600]  # many ties
    lengths = [len(s) for s in sessions]
    train = Sessions(
        items=np.array([i for s in sessions for i in s], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        ts=np.repeat(np.array(times, dtype=np.int64), lengths),
        users=np.full(len(sessions), -1, dtype=np.int64),
        session_ids=np.arange(len(sessions)),
        n_items=N_ITEMS,
    )
    return sessions, times, train


def random_prefixes(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed + 100)
    return [[int(i) for i in rng.integers(0, N_ITEMS, size=rng.integers(1, 6))]
            for _ in range(40)]


def rule_scores(rules: dict, prefixes: list[list[int]]) -> np.ndarray:
    out = np.zeros((len(prefixes), N_ITEMS))
    for row, prefix in enumerate(prefixes):
        for j, v in rules[prefix[-1]].items():
            out[row, j] = v
    return out


def reference_rules(sessions, kind: str) -> dict:
    rules: dict = defaultdict(lambda: defaultdict(float))
    for s in sessions:
        for p, i in enumerate(s):
            for q, j in enumerate(s):
                d = q - p
                if kind == "sr" and 1 <= d <= 3:
                    rules[i][j] += 1 / d
                elif kind == "ar" and d != 0 and i != j:
                    rules[i][j] += 1 / abs(d)
                elif kind == "markov" and d == 1:
                    rules[i][j] += 1
        if kind == "cooc":
            for i in set(s):
                for j in set(s) - {i}:
                    rules[i][j] += 1
    return rules


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("kind", "model"),
    [("sr", SequentialRules(steps=3, pruning=0)), ("ar", AssociationRules("div", pruning=0)),
     ("markov", MarkovChain()), ("cooc", Cooccurrence())],
    ids=["sr", "ar", "markov", "cooc"],
)
def test_rules_match_the_definition(seed, kind, model):
    sessions, _, train = random_data(seed)
    prefixes = random_prefixes(seed)
    expected = rule_scores(reference_rules(sessions, kind), prefixes)
    got = model.fit(train).score(prefixes).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_iknn_matches_the_definition(seed):
    sessions, _, train = random_data(seed)
    prefixes = random_prefixes(seed)
    holding = defaultdict(set)
    for s_idx, s in enumerate(sessions):
        for i in s:
            holding[i].add(s_idx)
    expected = np.zeros((len(prefixes), N_ITEMS))
    for row, prefix in enumerate(prefixes):
        i = prefix[-1]
        for j in range(N_ITEMS):
            if j != i and holding[i] & holding[j]:
                both = len(holding[i] & holding[j])
                expected[row, j] = both / (math.sqrt(len(holding[i]) * len(holding[j])) + 3.0)
    got = ItemKNN(shrinkage=3.0, pruning=0).fit(train).score(prefixes).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def recency_order(times: list[int]) -> list[int]:
    """Session indices, most recent first; ties: later in the data first."""
    return sorted(range(len(times)), key=lambda s: (-times[s], -s))


def reference_knn(sessions, times, prefix, k, sample_size, weighting, stan=None):
    n = len(prefix)
    latest = {i: p + 1 for p, i in enumerate(prefix)}  # 1-based, latest occurrence wins
    if stan:
        w = {i: math.exp((p - n) / stan["spw"]) for i, p in latest.items()}
    elif weighting == "linear":
        w = {i: p / n for i, p in latest.items()}
    else:
        w = dict.fromkeys(latest, 1.0)
    order = recency_order(times)
    cands = [s for s in order if set(sessions[s]) & set(latest)][:sample_size]
    sims = {}
    for s in cands:
        t = set(sessions[s])
        dot = sum(w[i] for i in latest if i in t)
        if stan:
            sim = dot / math.sqrt(len(latest) * len(t))
            sim *= math.exp(-(max(times) - times[s]) / (stan["snh"] * 86400))
        else:
            sim = dot / (math.sqrt(sum(v * v for v in w.values())) * math.sqrt(len(t)))
        sims[s] = sim
    rank = {s: r for r, s in enumerate(order)}
    neighbours = sorted(cands, key=lambda s: (-sims[s], rank[s]))[:k]
    scores = np.zeros(N_ITEMS)
    for s in neighbours:
        seq = sessions[s]
        if stan:
            anchor = max((i for i in latest if i in seq), key=lambda i: latest[i])
            at = [q for q, i in enumerate(seq) if i == anchor]
            for j in set(seq):
                d = min(abs(q - a) for q, i in enumerate(seq) if i == j for a in at)
                scores[j] += sims[s] * math.exp(-d / stan["inh"])
        else:
            for j in set(seq):
                scores[j] += sims[s]
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("k", "sample_size"), [(200, 200), (200, 7), (5, 200)])
def test_sknn_matches_the_definition(seed, k, sample_size):
    sessions, times, train = random_data(seed)
    prefixes = random_prefixes(seed)
    got = SessionKNN(k=k, sample_size=sample_size).fit(train).score(prefixes).numpy()
    for row, prefix in enumerate(prefixes):
        expected = reference_knn(sessions, times, prefix, k, sample_size, "same")
        np.testing.assert_allclose(got[row], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sample_size", [200, 7])
def test_vsknn_matches_the_definition(seed, sample_size):
    sessions, times, train = random_data(seed)
    prefixes = random_prefixes(seed)
    model = VectorSessionKNN(k=200, sample_size=sample_size).fit(train)
    got = model.score(prefixes).numpy()
    for row, prefix in enumerate(prefixes):
        expected = reference_knn(sessions, times, prefix, 200, sample_size, "linear")
        np.testing.assert_allclose(got[row], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sample_size", [200, 7])
def test_stan_matches_the_definition(seed, sample_size):
    sessions, times, train = random_data(seed)
    prefixes = random_prefixes(seed)
    lambdas = {"spw": 1.5, "snh": 0.5, "inh": 2.0}
    model = STAN(k=200, sample_size=sample_size, lambda_spw=1.5, lambda_snh=0.5,
                 lambda_inh=2.0).fit(train)
    got = model.score(prefixes).numpy()
    for row, prefix in enumerate(prefixes):
        expected = reference_knn(sessions, times, prefix, 200, sample_size, None, lambdas)
        np.testing.assert_allclose(got[row], expected, rtol=1e-5, atol=1e-7)
