"""gru4rec-tan: Tan et al.'s options (augmentation, item dropout, fine-tuning, output
embeddings) with hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sessionrec.batching.phases import LastTargetSource, PhasedSource, recent_sessions
from sessionrec.batching.prefixes import PrefixSource
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.evaluation.evaluator import evaluate
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.models.neural.gru_prefix import item_keep_mask
from tests.models.cyclic import cyclic


def tan(**kw):
    params = {"embedding": 16, "hidden": 16, "batch_size": 16, "n_epochs": 4,
              "learning_rate": 0.01, "progress": False, **kw}
    return get_model_class("gru4rec-tan")(**params)


def test_item_keep_mask_with_a_fixed_generator():
    gen = torch.Generator().manual_seed(0)
    u = torch.rand((2, 3), generator=gen)  # the draws the mask compares with p
    mask = item_keep_mask(torch.tensor([3, 2]), 3, 0.5, torch.Generator().manual_seed(0))
    expected = u >= 0.5
    expected[0, 2] = True  # row 0's last item (length 3) is always kept
    expected[1, 1] = True  # row 1's last item (length 2)
    assert torch.equal(mask, expected)
    # p = 0 keeps everything; p close to 1 keeps only each row's last item
    assert item_keep_mask(torch.tensor([2]), 2, 0.0).all()
    only_last = item_keep_mask(torch.tensor([3, 1]), 3, 0.999999,
                               torch.Generator().manual_seed(1))
    assert only_last.tolist() == [[False, False, True], [True, False, False]]


def test_recent_sessions_by_first_timestamp_with_ties_in_data_order():
    base = Sessions.from_lists([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2]], 4)
    # first timestamps 300, 0, 120, 120, 240 (ties: sessions 2 and 3 keep their order)
    ts = np.array([300, 301, 0, 1, 120, 121, 120, 121, 240, 241], dtype=np.int64)
    s = Sessions(base.items, base.offsets, ts, base.users, base.session_ids, 4)
    assert recent_sessions(s, 0.4).tolist() == [4, 0]          # ceil(0.4 · 5) = 2
    assert recent_sessions(s, 0.5).tolist() == [3, 4, 0]       # ceil(2.5) = 3
    assert recent_sessions(s, 1.0).tolist() == [1, 2, 3, 4, 0]
    assert recent_sessions(s, 0.01).tolist() == [0]            # at least one session
    with pytest.raises(ConfigError, match="recent fraction"):
        recent_sessions(s, 0.0)


def test_without_augmentation_each_session_gives_one_case():
    s = Sessions.from_lists([[0, 1, 2, 3], [4, 5], [6]], 7)
    full = PrefixSource(s, 10, 50)
    last = LastTargetSource(s, 10, 50)
    assert full.n_cases == 4 and last.n_cases == 1 + 1 - 0  # length-1 session: no case
    (batch,) = list(last.epoch(0))
    rows = sorted(zip(batch.targets.tolist(), batch.items.tolist(), strict=True))
    assert rows == [(3, [0, 1, 2]), (5, [4, 7, 7])]            # 7 = padding


def test_phased_source_switches_at_the_boundary_epoch():
    s = Sessions.from_lists([[0, 1, 2], [3, 4], [5, 6]], 7)
    recent = s.subset(recent_sessions(s, 0.34))                # ceil(1.02) = 2 sessions
    assert recent.n_sessions == 2
    phased = PhasedSource(PrefixSource(s, 8, 50), PrefixSource(recent, 8, 50), 2)
    targets = [sorted(t for b in phased.epoch(e) for t in b.targets.tolist()) for e in range(4)]
    assert targets == [[1, 2, 4, 6], [1, 2, 4, 6], [4, 6], [4, 6]]


def test_finetune_parameters_are_checked():
    with pytest.raises(ConfigError, match="fewer than n_epochs"):
        tan(finetune_fraction=0.5, finetune_epochs=4)
    with pytest.raises(ConfigError, match="set both"):
        tan(finetune_fraction=0.5)
    with pytest.raises(ConfigError, match="n_sample must stay -1"):
        tan(prediction="embedding", n_sample=4)


@pytest.mark.parametrize("extra", [{"augment": False, "n_epochs": 12},
                                   {"item_dropout": 0.2, "finetune_fraction": 0.5,
                                    "finetune_epochs": 1},
                                   {"prediction": "embedding", "n_epochs": 8}])
def test_every_option_learns_the_cyclic_task(extra):
    train, test = cyclic(200, 0), cyclic(40, 1)
    model = tan(**extra).fit(train)
    recall = evaluate(model, train, test, ks=(1,)).metrics()["recall@1"]
    assert recall > 0.9, (extra, recall)


def test_output_embedding_scores_are_cosines(tmp_path):
    train = cyclic(60, 0)
    model = tan(prediction="embedding", n_epochs=1).fit(train)
    h = model.net_.encoder(PrefixSource(train, 4, 50).batch(torch.arange(2)))
    w = model.net_.output.weight
    expected = torch.nn.functional.cosine_similarity(h[:, None, :], w[None, :, :], dim=-1)
    assert torch.allclose(model.net_.output.full(h), expected, atol=1e-5)
    model.save(tmp_path / "m")
    again = SessionRecommender.load(tmp_path / "m")
    assert torch.equal(again.score([[1, 2]]), model.score([[1, 2]]))
