"""CORE (and the other attention models): what the paper's equations say, checked by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sessionrec.evaluation.evaluator import evaluate
from sessionrec.models.base import get_model_class
from tests.models.cyclic import cyclic

TINY = {"embedding": 8, "batch_size": 16, "n_epochs": 1, "progress": False}


def test_core_ave_scores_are_cosines_of_the_mean_item_vector_over_tau():
    train = cyclic(30, 0)
    model = get_model_class("core")(encoder="ave", temperature=0.5, **TINY).fit(train)
    table = model.net_.output.weight.detach()
    prefix = [1, 2, 2]
    h = table[prefix].mean(0)  # eq. 3: α_i = 1/n over the positions (2 counts twice)
    want = F.normalize(h, dim=0) @ F.normalize(table, dim=1).t() / 0.5
    torch.testing.assert_close(model.score([prefix])[0], want, rtol=1e-5, atol=1e-5)
    # cosine / τ is bounded by 1 / τ
    assert float(model.score([[3]]).abs().max()) <= 1 / 0.5 + 1e-5


def test_core_trm_weights_are_a_distribution_over_real_positions_only():
    model = get_model_class("core")(**TINY).fit(cyclic(30, 0))
    enc = model.net_.encoder.eval()
    items = torch.tensor([[1, 2, 3], [4, 5, model.n_items_]])
    x = enc.items(items)
    alpha = enc.alpha(x, items != model.n_items_)
    torch.testing.assert_close(alpha.sum(1), torch.ones(2))
    assert float(alpha[1, 2].detach()) == 0.0  # padding gets no weight
    # causal: the first position's weight logit sees only the first item, so a prefix's
    # representation does not depend on items after it (score of [1] vs [1] in a batch)
    torch.testing.assert_close(model.score([[1]]), model.score([[1], [1, 2, 3]])[:1])


def test_core_learns_the_next_item():
    train, test = cyclic(300, 0), cyclic(40, 1)
    params = {"embedding": 16, "batch_size": 16, "n_epochs": 4, "learning_rate": 0.01,
              "progress": False}
    trm = get_model_class("core")(dropout_hidden=0.1, dropout_attention=0.1, **params)
    # CORE's session vector is a convex combination of its items' vectors, so after a
    # one-item prefix [a] the closest item is a itself (cos = 1): the next item of the cycle
    # comes right after the session's own items
    for model in (trm, get_model_class("core")(encoder="ave", **params)):
        recall = evaluate(model.fit(train), train, test, ks=(1, 5)).metrics()
        assert recall["recall@5"] > 0.8, recall
        top = model.score([[3]]).argmax(1)
        assert top.tolist() == [3]


def test_sasrec_learns_the_next_item_and_indexes_positions_by_recency():
    train, test = cyclic(300, 0), cyclic(40, 1)
    model = get_model_class("sasrec")(embedding=16, batch_size=16, n_epochs=4,
                                      learning_rate=0.01, dropout=0.1, progress=False)
    assert evaluate(model.fit(train), train, test, ks=(1,)).metrics()["recall@1"] > 0.9
    # the last item of any prefix gets position 0 (SASRec's last slot of its window): a
    # one-item prefix is [x_a·√d + P_0] through the blocks, whatever the batch's width
    enc = model.net_.encoder.eval()
    got = model.score([[3]])
    x = enc.items(torch.tensor([[3]])) * enc.scale + enc.positions(torch.tensor([[0]]))
    with torch.no_grad():
        h = enc.blocks(x, mask=torch.zeros(1, 1, dtype=torch.bool),
                       src_key_padding_mask=torch.zeros(1, 1, dtype=torch.bool))[:, 0]
    torch.testing.assert_close(got, model.net_.output.full(h), rtol=1e-5, atol=1e-5)
