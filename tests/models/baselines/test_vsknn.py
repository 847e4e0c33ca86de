import math

import pytest

from sessionrec.models.baselines import VectorSessionKNN

from .test_sknn import TRAIN  # s0=[0,1,2], s1=[1,2], s2=[2,3]; s2 most recent

# prefix [1, 2] with linear weights: w(1) = 1/2, w(2) = 2/2 = 1, ||w|| = sqrt(1.25)
NORM = math.sqrt(1.25)
S0 = 1.5 / (NORM * math.sqrt(3))
S1 = 1.5 / (NORM * math.sqrt(2))
S2 = 1.0 / (NORM * math.sqrt(2))


def test_linear_position_weights_with_cosine():
    scores = VectorSessionKNN().fit(TRAIN).score([[1, 2]]).numpy()[0]
    assert scores.tolist() == pytest.approx([S0, S0 + S1, S0 + S1 + S2, S2, 0.0])


def test_order_matters():
    scores = VectorSessionKNN().fit(TRAIN).score([[2, 1]]).numpy()[0]
    # now w(2) = 1/2, w(1) = 1: s2 shares only the older item
    s2 = 0.5 / (NORM * math.sqrt(2))
    assert scores[3] == pytest.approx(s2)


def test_dot_similarity_sums_shared_weights():
    scores = VectorSessionKNN(similarity="dot").fit(TRAIN).score([[1, 2]]).numpy()[0]
    assert scores.tolist() == pytest.approx([1.5, 3.0, 4.0, 1.0, 0.0])


def test_div_weighting():
    scores = VectorSessionKNN(weighting="div", similarity="dot").fit(TRAIN).score(
        [[0, 1, 2]]).numpy()[0]
    # w(0) = 1/3, w(1) = 1/2, w(2) = 1; s0 shares all, s1 {1, 2}, s2 {2}
    s0, s1, s2 = 1 / 3 + 1 / 2 + 1, 1 / 2 + 1, 1.0
    assert scores.tolist() == pytest.approx([s0, s0 + s1, s0 + s1 + s2, s2, 0.0])


def test_idf_weights_the_prefix_items():
    scores = VectorSessionKNN(idf=True, similarity="dot").fit(TRAIN).score(
        [[1, 2]]).numpy()[0]
    # idf(1) = log(3 / 2), idf(2) = log(3 / 3) = 0: only item 1 contributes, weight 1/2
    w = 0.5 * math.log(1.5)
    assert scores.tolist() == pytest.approx([w, 2 * w, 2 * w, 0.0, 0.0])


@pytest.mark.parametrize("cls_kw", [{}, {"similarity": "dot", "idf": True}])
def test_a_few_prefixes_are_summed_directly_with_the_sparse_products_numbers(cls_kw):
    # Live requests (<= DIRECT_ROWS prefixes) skip the sparse matrices; the scores must be
    # the very same float32 numbers as the sparse path's (same sums in the same order).
    import numpy as np
    import scipy.sparse as sp
    import torch

    from sessionrec.models.baselines import SessionKNN
    from tests.models.cyclic import cyclic

    train = cyclic(400, seed=7)
    rng = np.random.default_rng(1)
    prefixes = [rng.integers(0, train.n_items, rng.integers(1, 9)) for _ in range(40)]
    for model in (VectorSessionKNN(k=20, sample_size=60, **cls_kw).fit(train),
                  SessionKNN(k=20, sample_size=60).fit(train)):
        direct = model.score(prefixes)
        sparse = model._score_sparse(prefixes, None).dense()
        assert torch.equal(direct, sparse)
        assert (direct > 0).any()
        assert torch.equal(model.score(prefixes[:1]), sparse[:1])
        # and the float64 sums themselves, before the cast (a change of summation order
        # would show here, where it may vanish in float32)
        keys, sums = model._direct_sums(prefixes)
        prefix, session, sim = model._neighbours(prefixes)
        product = (sp.csr_matrix((sim, (prefix, session)),
                                 shape=(len(prefixes), model.index_.n_sessions))
                   @ model.index_.incidence).tocoo()
        order = np.argsort(product.row * train.n_items + product.col)
        assert np.array_equal(np.sort(product.row * train.n_items + product.col), keys)
        assert np.array_equal(product.data[order], sums)
