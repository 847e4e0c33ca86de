import math

import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.baselines import ItemKNN

# sessions per item: n = [1, 2, 3, 1]; item 1 shares 1 session with 0 and 2 with 2
TRAIN = Sessions.from_lists([[0, 1, 2], [1, 2], [2, 3]], n_items=5)


def test_plain_cosine():
    scores = ItemKNN(shrinkage=0).fit(TRAIN).score([[1]]).numpy()[0]
    assert scores.tolist() == pytest.approx([1 / math.sqrt(2), 0, 2 / math.sqrt(6), 0, 0])


def test_shrinkage_in_the_denominator():
    scores = ItemKNN(shrinkage=1).fit(TRAIN).score([[1]]).numpy()[0]
    expected = [1 / (math.sqrt(2) + 1), 0, 2 / (math.sqrt(6) + 1), 0, 0]
    assert scores.tolist() == pytest.approx(expected)


def test_alpha_one_divides_by_the_last_items_count():
    scores = ItemKNN(shrinkage=0, alpha=1.0).fit(TRAIN).score([[1]]).numpy()[0]
    assert scores.tolist() == pytest.approx([0.5, 0, 1.0, 0, 0])


def test_pruning_keeps_the_most_similar():
    scores = ItemKNN(shrinkage=0, pruning=1).fit(TRAIN).score([[1]]).numpy()[0]
    assert scores.tolist() == pytest.approx([0, 0, 2 / math.sqrt(6), 0, 0])


def test_alpha_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="alpha"):
        ItemKNN(alpha=1.5)
