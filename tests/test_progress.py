"""Progress: periodic one-line records when not on a terminal, a summary line, -q silences."""

from __future__ import annotations

import io
import logging

import pytest

from sessionrec import progress
from sessionrec.progress import Progress, auto_mode, rate_text, track


@pytest.fixture(autouse=True)
def propagating(monkeypatch):
    """Records reach caplog even after the CLI gave the logger a handler of its own."""
    monkeypatch.setattr(logging.getLogger("sessionrec.progress"), "propagate", True)


@pytest.fixture
def log_mode(monkeypatch):
    monkeypatch.setenv("SESSIONREC_PROGRESS_EVERY_S", "0")  # a record at every update
    before = progress.mode()
    progress.configure("log")
    yield
    progress.configure(before)


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sessionrec.progress"]


def test_rate_text() -> None:
    assert rate_text(1234, 2.0, "events") == "1,234 events in 2.0 s (617 events/s)"
    assert rate_text(5, 0.0, "steps") == "5 steps in 0.0 s"


def test_log_mode_writes_status_lines_and_a_summary(log_mode, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sessionrec.progress")
    with Progress(4, "evaluate pop", "predictions") as bar:
        bar.update(1)
        bar.update(3)
    lines = messages(caplog)
    assert len(lines) == 3
    assert lines[0].startswith("evaluate pop: 1/4 predictions (25%), ")
    assert lines[1].startswith("evaluate pop: 4/4 predictions (100%), ")
    assert lines[2].startswith("evaluate pop: 4 predictions in ")
    assert lines[2].endswith("predictions/s)")
    assert not any("\r" in line for line in lines)


def test_steps_are_always_logged(monkeypatch, caplog) -> None:
    monkeypatch.setenv("SESSIONREC_PROGRESS_EVERY_S", "3600")
    progress.configure("log")
    caplog.set_level(logging.INFO, logger="sessionrec.progress")
    bar = Progress(2, "prepare", "steps")
    bar.update(1)  # within the interval: no record
    bar.step("encode_write")
    bar.close()
    bar.close()  # once only
    lines = messages(caplog)
    assert len(lines) == 2
    assert lines[0].startswith("prepare: encode_write done (2/2), ")
    assert lines[1].startswith("prepare: 2 steps in ") and "/s" not in lines[1]


def test_off_mode_is_silent(caplog) -> None:
    progress.configure("off")
    try:
        caplog.set_level(logging.INFO, logger="sessionrec.progress")
        assert list(track([1, 2, 3], "x")) == [1, 2, 3]
        assert messages(caplog) == []
    finally:
        progress.configure("log")


def test_auto_mode() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert auto_mode(False, io.StringIO()) == "log"
    assert auto_mode(False, Tty()) == "bar"
    assert auto_mode(True, Tty()) == "off"
    with pytest.raises(ValueError, match="valid: bar, log, off"):
        progress.configure("loud")  # type: ignore[arg-type]


def test_postfix_is_in_status_lines_and_the_summary(log_mode, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sessionrec.progress")
    bar = Progress(10, "gru4rec epoch 1/3", "events")
    bar.update(4)
    assert bar.n == 4
    bar.set_postfix(loss="0.5312")
    bar.update(6)
    summary = bar.close()
    assert summary.startswith("gru4rec epoch 1/3: 10 events in ")
    assert summary.endswith(", loss=0.5312")
    lines = messages(caplog)
    assert "loss=" not in lines[0]  # set after the first update
    assert lines[1].endswith(", loss=0.5312")
    assert lines[-1] == summary


def test_gru4rec_logs_one_summary_per_epoch_with_every_event_counted(log_mode, caplog) -> None:
    """The bar used to vanish at the end of an epoch and nothing was logged when redirected."""
    from sessionrec.models.gru4rec import GRU4Rec
    from tests.models.cyclic import cyclic

    caplog.set_level(logging.INFO, logger="sessionrec.progress")
    train = cyclic(60)
    model = GRU4Rec(layers=(8,), batch_size=4, n_epochs=2, n_sample=0, progress=True, seed=0)
    model.fit(train)
    pairs = int((train.offsets[1:] - train.offsets[:-1] - 1).sum())
    summaries = [m for m in messages(caplog) if " events in " in m]
    assert [s.split(":")[0] for s in summaries] == ["gru4rec epoch 1/2", "gru4rec epoch 2/2"]
    counted = [int(s.split(": ")[1].split(" events in ")[0].replace(",", "")) for s in summaries]
    # every pair the epoch trained on: session-parallel lanes end with the last full step, so at
    # most batch_size - 1 of the total are left out
    assert all(pairs - 4 < c <= pairs for c in counted)
    assert all("loss=" in s for s in summaries)
