"""Models saved by the code before GRU4Rec/HGRU4Rec moved onto ``nn.Module`` s still load.

``saved_before_port/`` holds a tiny GRU4Rec and a tiny HGRU4Rec (12 items) saved by main at
0a8f785 (weights as a dict of tensors), with the scores that code gave for three prefixes
(``expected_scores.json``). The loaded models must give exactly those scores; a weights file
that lacks a tensor or has one of another shape is refused naming why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sessionrec.errors import SessionRecError
from sessionrec.models.base import SessionRecommender

SAVED = Path(__file__).parent / "saved_before_port"
EXPECTED = json.loads((SAVED / "expected_scores.json").read_text())
PREFIXES = [np.array(p) for p in EXPECTED["prefixes"]]


def test_gru4rec_saved_before_the_port_gives_the_same_scores():
    model = SessionRecommender.load(SAVED / "gru4rec")
    assert model.name == "gru4rec"
    assert torch.equal(model.score(PREFIXES), torch.tensor(EXPECTED["gru4rec"]))


def test_hgru4rec_saved_before_the_port_gives_the_same_scores():
    model = SessionRecommender.load(SAVED / "hgru4rec")
    assert model.name == "hgru4rec"
    scores = model.score(PREFIXES, np.array([0, 1, -1]))
    assert torch.equal(scores, torch.tensor(EXPECTED["hgru4rec"]))


@pytest.mark.parametrize(("change", "message"), [
    (lambda w: w.pop("w.Wy"), "do not fit this model"),
    (lambda w: w.update({"w.w_hh0": torch.zeros(3, 3)}), "do not fit this model"),
])
def test_a_saved_gru4rec_with_other_tensors_is_refused(tmp_path, change, message):
    shutil.copytree(SAVED / "gru4rec", tmp_path / "m")
    weights = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    change(weights)
    torch.save(weights, tmp_path / "m" / "weights.pt")
    with pytest.raises(SessionRecError, match=message):
        SessionRecommender.load(tmp_path / "m")
