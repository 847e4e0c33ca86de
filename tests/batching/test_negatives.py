"""Negative sampling: distribution, alpha, blocks, determinism."""

import numpy as np
import pytest
import torch

from sessionrec.batching.negatives import NegativeSampler, alias_table, sampling_weights


def test_sampling_weights():
    w = sampling_weights(np.array([0, 1, 4, 9]), 0.5)
    assert w.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert sampling_weights(np.array([0, 1, 4]), 0.0).tolist() == [0.0, 1.0, 1.0]


def test_alias_table_reproduces_distribution_exactly():
    p = np.array([0.1, 0.0, 0.5, 0.4])
    accept, alias = alias_table(p)
    n = len(p)
    implied = accept / n
    for k in range(n):
        implied[alias[k]] += (1 - accept[k]) / n
    np.testing.assert_allclose(implied, p, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_empirical_distribution(alpha):
    counts = np.array([1, 0, 4, 16, 9])
    s = NegativeSampler(counts, 500, alpha, cache_size=100_000, seed=3)
    draws = torch.cat([s.draw() for _ in range(400)]).numpy()
    emp = np.bincount(draws, minlength=5) / len(draws)
    expected = sampling_weights(counts, alpha) / sampling_weights(counts, alpha).sum()
    np.testing.assert_allclose(emp, expected, atol=0.01)
    assert emp[1] == 0  # an item never seen in training is never a negative


def test_blocks_and_reseed_are_deterministic():
    counts = np.arange(1, 50)
    a = NegativeSampler(counts, 7, 0.5, cache_size=70, seed=1)
    first = torch.stack([a.draw() for _ in range(25)])  # crosses block boundaries (10 rows)
    a.reseed(1)
    again = torch.stack([a.draw() for _ in range(25)])
    assert torch.equal(first, again)
    b = NegativeSampler(counts, 7, 0.5, cache_size=70, seed=2)
    assert not torch.equal(first, torch.stack([b.draw() for _ in range(25)]))


def test_zero_samples_and_bad_input():
    s = NegativeSampler(np.array([1, 2]), 0, 0.5)
    assert s.draw().shape == (0,)
    with pytest.raises(ValueError, match="n_sample"):
        NegativeSampler(np.array([1]), -1, 0.5)
    with pytest.raises(ValueError, match="positive count"):
        NegativeSampler(np.array([0, 0]), 4, 0.5)
