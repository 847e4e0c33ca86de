import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.baselines import Cooccurrence

TRAIN = Sessions.from_lists([[0, 1, 2], [1, 2], [2, 3]], n_items=5)


def test_counts_sessions_containing_the_last_item_and_the_candidate():
    model = Cooccurrence().fit(TRAIN)
    # item 1 is with 0 in one session and with 2 in two; never with 3 or 4, not with itself
    assert model.score([[1]]).numpy()[0].tolist() == [1.0, 0.0, 2.0, 0.0, 0.0]
    # only the last item counts by default
    assert model.score([[3, 1]]).numpy()[0].tolist() == [1.0, 0.0, 2.0, 0.0, 0.0]


def test_a_session_counts_once_however_often_it_repeats_items():
    model = Cooccurrence().fit(Sessions.from_lists([[0, 1, 0, 2, 0]], n_items=3))
    assert model.score([[0]]).numpy()[0].tolist() == [0.0, 1.0, 1.0]


def test_use_all_sums_rows_with_decay():
    model = Cooccurrence(use_all=True, decay=0.5).fit(TRAIN)
    # 0.5 * C[0] + 1.0 * C[1] = 0.5 * [0, 1, 1, 0, 0] + [1, 0, 2, 0, 0]
    assert model.score([[0, 1]]).numpy()[0].tolist() == pytest.approx([1.0, 0.5, 2.5, 0, 0])


def test_invalid_decay_is_a_config_error():
    with pytest.raises(ConfigError, match="decay"):
        Cooccurrence(decay=0.0)
