"""Simulated A/B test: our GRU4Rec against an outside recommender consumed over HTTP.

Builds what configs/experiments/synthetic-external.toml needs (synthetic raw data with orders,
prepared data, the cooc / obt / GRU4Rec runs and the VSKNN run of the outside service), starts
the stand-in outside service (``sessionrec experiment outside``, its own field names and an
API key) on 127.0.0.1:8765, replays the held-out visitors through ``sessionrec serve
--experiment`` (``sessionrec experiment simulate``) and writes the report's section into
docs/experiments.md.

    python benchmarks/external_ab.py                 # the build (minutes) + the replay
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sessionrec.cli import main
from sessionrec.experiments import prerequisites
from sessionrec.experiments.liveapi import wait_ready
from sessionrec.experiments.simulate import load_simulation

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "synthetic-external.toml"
OUT = ROOT / "runs" / "experiments" / "synthetic-external" / "sim"


def run() -> int:
    cfg = load_simulation(CONFIG)
    prerequisites.build(cfg, CONFIG.parent, say=print)
    os.environ["OUTSIDE_KEY"] = "demo-key"
    outside = subprocess.Popen(
        [sys.executable, "-m", "sessionrec.cli", "experiment", "outside", "--key-env",
         "OUTSIDE_KEY", "--model", str(ROOT / "runs/experiments/synthetic/vsknn"),
         "--port", "8765"])
    try:
        wait_ready("http://127.0.0.1:8765", 120, alive=lambda: outside.poll() is None)
        return main(["experiment", "simulate", "--config", str(CONFIG), "--out", str(OUT),
                     "--overwrite", "--no-progress", "--doc", str(ROOT / "docs" /
                                                                   "experiments.md")])
    finally:
        outside.terminate()
        outside.wait(30)


if __name__ == "__main__":
    sys.exit(run())
