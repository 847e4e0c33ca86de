import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import Popularity

TRAIN = Sessions.from_lists([[0, 1, 2], [1, 2], [2, 3]], n_items=5)


def test_scores_are_training_frequency_scaled_by_the_maximum():
    model = Popularity().fit(TRAIN)
    # counts 1, 2, 3, 1, 0 over a maximum of 3; item 4 never occurs
    expected = [1 / 3, 2 / 3, 1.0, 1 / 3, 0.0]
    scores = model.score([[0], [3, 1], [4]]).numpy()
    for row in scores:
        assert row.tolist() == pytest.approx(expected)


def test_recommend_ranks_by_popularity():
    items, _ = Popularity().fit(TRAIN).recommend([[3]], k=2)
    np.testing.assert_array_equal(items, [[2, 1]])
