"""The epoch loop with a fake model: early stopping, best weights, checkpoints, resume."""

import pytest
import torch

from sessionrec.errors import SessionRecError
from sessionrec.training.trainer import EpochLoop, EpochStats, epoch_seed


class Fake:
    """A 'model' whose weight is the epoch count; validation scores follow a script."""

    def __init__(self, scores):
        self.w = torch.zeros(1)
        self.scores = scores
        self.ran: list[int] = []

    def state(self):
        return {"w": self.w.clone()}

    def set_state(self, s):
        self.w = s["w"].clone()

    def epoch(self, e):
        self.ran.append(e)
        self.w += 1
        return EpochStats(loss=1.0 / (e + 1), events=10, predictions=8, seconds=0.5)

    def validate(self):
        return self.scores[int(self.w.item()) - 1]


def loop(fake, n_epochs=6, patience=0, **kw):
    return EpochLoop(n_epochs, patience, fake.state, fake.set_state, fake.state,
                     fake.validate, **kw)


def test_patience_stops_and_best_weights_are_restored():
    fake = Fake([0.1, 0.3, 0.2, 0.25, 0.9, 1.0])
    hist = loop(fake, patience=2).run(fake.epoch)
    assert fake.ran == [0, 1, 2, 3]  # best at epoch 2, two epochs without improvement
    assert hist.stopped_early and hist.best_epoch == 2 and hist.best_score == 0.3
    assert fake.w.item() == 2  # the weights of epoch 2


def test_no_patience_runs_all_epochs_and_keeps_best():
    fake = Fake([0.1, 0.3, 0.2])
    hist = loop(fake, n_epochs=3).run(fake.epoch)
    assert fake.ran == [0, 1, 2] and not hist.stopped_early
    assert fake.w.item() == 2


def test_resume_continues_after_the_last_checkpoint(tmp_path):
    fake = Fake([0.1, 0.3, 0.2, 0.5])
    loop(fake, n_epochs=2, checkpoint_dir=tmp_path).run(fake.epoch)
    again = Fake([0.1, 0.3, 0.2, 0.5])
    hist = loop(again, n_epochs=4, checkpoint_dir=tmp_path, resume=True).run(again.epoch)
    assert again.ran == [2, 3]
    assert hist.resumed_from_epoch == 2 and hist.best_epoch == 4
    assert [e["epoch"] for e in hist.epochs] == [1, 2, 3, 4]


def test_checkpoint_with_other_fingerprint_is_refused(tmp_path):
    fake = Fake([0.1])
    loop(fake, n_epochs=1, checkpoint_dir=tmp_path, fingerprint={"vocab": "a"}).run(fake.epoch)
    with pytest.raises(SessionRecError, match="another vocabulary"):
        loop(Fake([0.1]), n_epochs=2, checkpoint_dir=tmp_path, resume=True,
             fingerprint={"vocab": "b"}).run(fake.epoch)


def test_diverged_loss_is_an_error():
    fake = Fake([0.1])
    with pytest.raises(SessionRecError, match="diverged"):
        loop(fake).run(lambda e: EpochStats(float("nan"), 1, 1, 0.1))


def test_epoch_seed_differs_by_epoch_and_stream():
    assert len({epoch_seed(0, e, s) for e in range(5) for s in range(3)}) == 15
    assert epoch_seed(1, 2, 3) == epoch_seed(1, 2, 3)
