import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines import SessionPopularity

# training counts 1, 2, 3, 1, 0 -> popularity 1/3, 2/3, 1, 1/3, 0
TRAIN = Sessions.from_lists([[0, 1, 2], [1, 2], [2, 3]], n_items=5)


def test_in_session_count_plus_half_popularity():
    scores = SessionPopularity().fit(TRAIN).score([[3, 1, 3]]).numpy()[0]
    assert scores.tolist() == pytest.approx([1 / 6, 1 + 1 / 3, 0.5, 2 + 1 / 6, 0.0])


def test_session_items_first_then_popularity_breaks_ties():
    items, _ = SessionPopularity().fit(TRAIN).recommend([[0, 4]], k=5)
    # 0 and 4 occur once in the session (0 is more popular), then the rest by popularity
    np.testing.assert_array_equal(items[0], [0, 4, 2, 1, 3])


def test_a_more_frequent_session_item_beats_a_more_popular_one():
    scores = SessionPopularity().fit(TRAIN).score([[3, 3, 2]]).numpy()[0]
    assert scores[3] > scores[2]  # count 2 + 1/6 against count 1 + 1/2
