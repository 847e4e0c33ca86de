"""Run outputs as a unit (issue 24): staged, swapped in whole, old run kept until then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sessionrec import rundir
from sessionrec.rundir import leftovers, staged_run

ROOT = Path(__file__).resolve().parents[1]


def old_run(run_dir: Path) -> None:
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "weights.pt").write_text("old weights")
    (run_dir / "metrics.json").write_text("old metrics")
    (run_dir / "ranks.parquet").write_text("old ranks")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_text("new checkpoint")
    (run_dir / "data").mkdir()
    (run_dir / "data" / "items.parquet").write_text("prepared")


@pytest.mark.parametrize("can_exchange", [True, False])
def test_a_new_run_replaces_the_old_outputs_whole(tmp_path, monkeypatch, can_exchange):
    if not can_exchange:
        monkeypatch.setattr(rundir, "exchange", lambda a, b: False)
    run_dir = tmp_path / "run"
    old_run(run_dir)
    with staged_run(run_dir) as stage:
        assert stage.parent == tmp_path and stage.name.startswith(".run.partial-")
        (stage / "metrics.json").write_text("new metrics")
        (stage / "model").mkdir()
        (stage / "model" / "weights.pt").write_text("new weights")
        assert (run_dir / "metrics.json").read_text() == "old metrics"  # not yet
    assert (run_dir / "metrics.json").read_text() == "new metrics"
    assert (run_dir / "model" / "weights.pt").read_text() == "new weights"
    assert not (run_dir / "ranks.parquet").exists()  # an old output does not linger
    assert (run_dir / "checkpoints" / "last.pt").read_text() == "new checkpoint"  # carried
    assert (run_dir / "data" / "items.parquet").read_text() == "prepared"
    assert leftovers(run_dir) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_failed_write_leaves_the_old_run_and_no_staging(tmp_path):
    run_dir = tmp_path / "run"
    old_run(run_dir)
    with pytest.raises(RuntimeError), staged_run(run_dir) as stage:
        (stage / "metrics.json").write_text("half")
        raise RuntimeError("killed")
    assert (run_dir / "metrics.json").read_text() == "old metrics"
    assert leftovers(run_dir) == []


def test_a_first_run_and_stale_staging(tmp_path):
    run_dir = tmp_path / "deep" / "run"
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / ".run.partial-dead").mkdir()  # a killed write's
    with staged_run(run_dir) as stage:
        (stage / "metrics.json").write_text("first")
    assert (run_dir / "metrics.json").read_text() == "first"
    assert leftovers(run_dir) == []


def test_kills_during_the_final_write_never_leave_a_partial_run(tmp_path):
    """The probe: SIGKILL of a run's final write at random moments (a small model, forked
    writers). The old in-place write fails the same check (see the benchmark's --in-place)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kill_run_write.py"), "--kills", "10",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["killed_during_write"] >= 5, report  # the kills did land in the write
    assert report["partial_run_dirs"] == 0, report["problems"]
    assert report["leftovers_after_next_write"] == 0
    assert out.returncode == 0
