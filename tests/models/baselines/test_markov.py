import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import MarkovChain

TRAIN = Sessions.from_lists([[0, 1, 0, 1, 2], [1, 1], [3], [4]], n_items=5)


def test_transition_counts_from_the_last_item():
    model = MarkovChain().fit(TRAIN)
    assert model.score([[0]]).numpy()[0].tolist() == [0.0, 2.0, 0.0, 0.0, 0.0]
    # 1 -> 0, 1 -> 2 and the repeated click 1 -> 1
    assert model.score([[2, 1]]).numpy()[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_no_transition_across_sessions():
    model = MarkovChain().fit(TRAIN)
    assert model.score([[3]]).numpy()[0].tolist() == [0.0] * 5


def test_normalize_gives_conditional_probabilities():
    model = MarkovChain(normalize=True).fit(TRAIN)
    assert model.score([[1]]).numpy()[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0, 0])
    assert model.score([[0]]).numpy()[0].tolist() == pytest.approx([0, 1, 0, 0, 0])
