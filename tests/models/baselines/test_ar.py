import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError
from sessionrec.models.baselines import AssociationRules

# positions: 0 -> item 0, 1 -> item 1, 2 -> item 0, 3 -> item 2
TRAIN = Sessions.from_lists([[0, 1, 0, 2]], n_items=4)


def test_counts_every_pair_of_events_in_both_directions():
    model = AssociationRules().fit(TRAIN)
    # c(0)=2, c(1)=1, c(2)=1: R[i, j] = c(i) c(j), no self rules
    assert model.score([[0]]).numpy()[0].tolist() == [0.0, 2.0, 2.0, 0.0]
    assert model.score([[1]]).numpy()[0].tolist() == [2.0, 0.0, 1.0, 0.0]
    assert model.score([[2]]).numpy()[0].tolist() == [2.0, 1.0, 0.0, 0.0]


def test_div_weighting_uses_the_distance_between_the_events():
    model = AssociationRules(weighting="div").fit(TRAIN)
    # 0-1: distances 1 and 1 -> 2; 0-2: distances 3 and 1 -> 4/3; 1-2: distance 2 -> 1/2
    assert model.score([[0]]).numpy()[0].tolist() == pytest.approx([0, 2, 4 / 3, 0])
    assert model.score([[2]]).numpy()[0].tolist() == pytest.approx([4 / 3, 0.5, 0, 0])


def test_pruning_keeps_the_strongest_rules_per_item():
    model = AssociationRules(weighting="div", pruning=1).fit(TRAIN)
    assert model.score([[0]]).numpy()[0].tolist() == [0.0, 2.0, 0.0, 0.0]


def test_unknown_weighting_is_a_config_error():
    with pytest.raises(ConfigError, match="weighting"):
        AssociationRules(weighting="cubic")
