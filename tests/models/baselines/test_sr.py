import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import SequentialRules

TRAIN = Sessions.from_lists([[0, 1, 2, 3], [1, 2]], n_items=4)


def test_rules_follow_the_order_with_one_over_distance_weights():
    model = SequentialRules(steps=2).fit(TRAIN)
    assert model.score([[0]]).numpy()[0].tolist() == pytest.approx([0, 1, 0.5, 0])
    # 1 -> 2 directly in both sessions, 1 -> 3 two steps ahead
    assert model.score([[1]]).numpy()[0].tolist() == pytest.approx([0, 0, 2, 0.5])
    assert model.score([[3]]).numpy()[0].tolist() == [0.0, 0.0, 0.0, 0.0]  # nothing after 3


def test_steps_limits_the_window():
    model = SequentialRules(steps=1).fit(TRAIN)
    assert model.score([[1]]).numpy()[0].tolist() == pytest.approx([0, 0, 2, 0])


def test_self_rules_are_kept_by_default_and_other_weightings_apply():
    # session [0, 0, 1]: 0 -> 0 at distance 1; 0 -> 1 at distances 2 and 1
    train = Sessions.from_lists([[0, 0, 1]], n_items=2)
    assert SequentialRules().fit(train).score([[0]]).numpy()[0].tolist() == pytest.approx(
        [1.0, 1.5])
    assert SequentialRules(self_pairs=False).fit(train).score(
        [[0]]).numpy()[0].tolist() == pytest.approx([0, 1.5])
    assert SequentialRules(weighting="quadratic", self_pairs=False).fit(train).score(
        [[0]]).numpy()[0].tolist() == pytest.approx([0, 1.25])
