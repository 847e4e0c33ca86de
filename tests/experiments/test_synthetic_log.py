"""The synthetic event log: schema, assignment by the experiment's hash, consistent rows."""

from __future__ import annotations

import polars as pl

from sessionrec.experiments.assignment import assign
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import EVENT_SCHEMA, open_event_log
from sessionrec.experiments.synthetic_log import synthetic_events, write_log


def test_synthetic_log_is_consistent_and_writable(tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text('[experiment]\nname = "x"\nsalt = "s"\nholdout = 0.2\nfallback = "cooc"\n'
                    '[variants.control]\nmodel = "often-bought-together"\nweight = 0.5\n'
                    '[variants.b]\nmodel = "popular"\nweight = 0.5\n')
    config = load_experiment(toml, check_models=False)
    frame = synthetic_events(config, n_units=60, days=3, ctr={"b": 1.0}, buy_rate=1.0)
    assert frame.schema == pl.Schema(EVENT_SCHEMA)
    assert frame["seq"].to_list() == list(range(1, len(frame) + 1))
    assert frame["ts"].is_sorted()
    for row in frame.filter(pl.col("kind") == "assignment").iter_rows(named=True):
        assert row["variant"] == assign(config, row["unit_id"]) != "holdout"
    n = frame.group_by("kind").len().to_dict(as_series=False)
    counts = dict(zip(n["kind"], n["len"], strict=True))
    # ctr 1 and buy rate 1 for b: every b impression is clicked and bought
    b = frame.filter(pl.col("variant") == "b").group_by("kind").len()
    b = dict(zip(b["kind"].to_list(), b["len"].to_list(), strict=True))
    assert b["impression"] == b["click"] == b["purchase"]
    per_session = frame.filter(pl.col("kind") == "impression").group_by("session_id").len()
    assert per_session["len"].min() >= 1 and per_session["len"].max() <= 5
    assert counts["recommendation"] == frame.filter(
        pl.col("kind") == "impression")["session_id"].n_unique()
    with open_event_log(f"sqlite:///{tmp_path / 'e.db'}") as log:
        assert write_log(log, frame, batch=100) == len(frame)
        assert log.counts("x") == {k: counts.get(k, 0) for k in log.counts("x")}
