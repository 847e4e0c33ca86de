"""The replay simulator end to end: tiny synthetic data, real API (in-process, loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from sessionrec.data.sources import get_source
from sessionrec.errors import ConfigError
from sessionrec.experiments import prerequisites, visitors
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.experiments.liveapi import InProcessServer
from sessionrec.experiments.report import analyse
from sessionrec.experiments.simulate import (
    BuildConfig,
    BuildRun,
    SimulationConfig,
    SynthSpec,
    load_simulation,
    replay,
)
from sessionrec.experiments.simulate_doc import write_section
from sessionrec.serving.app import create_app
from sessionrec.serving.settings import ServeSettings

EXPERIMENT = """
[experiment]
name = "tiny"
salt = "test"
unit = "user"
control = "control"
orders = "runs/obt"

[variants.control]
model = "often-bought-together"
weight = 0.5

[variants.gru4rec]
model = "runs/gru4rec"
weight = 0.5
"""

GRU = {"n_epochs": 1, "layers": [16], "n_sample": 32, "batch_size": 16, "threads": 1,
       "progress": False}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationConfig]:
    """Synthetic raw data with orders (12 days), prepared with the last 4 days held out by
    time, a cooc and a GRU4Rec run on it, and an experiment serving both."""
    base = tmp_path_factory.mktemp("sim")
    (base / "exp.toml").write_text(EXPERIMENT)
    cfg = SimulationConfig(
        experiment="exp.toml", prepared="data", raw="raw", days=4, seed=0, concurrency=4,
        max_visitors=6,
        build=BuildConfig(
            source="galaxus", synth=SynthSpec(events=6_000, events_per_shard=500, seed=0),
            prepare={"split": {"method": "time", "test_days": 4.0, "valid": False},
                     "filter": {"min_user_sessions": 2}},
            runs={"runs/cooc": BuildRun("cooc"), "runs/obt": BuildRun("obt"),
                  "runs/gru4rec": BuildRun("gru4rec", params=GRU)}))
    prerequisites.build(cfg, base, say=lambda _: None)
    assert (base / "data" / "orders.parquet").is_file()  # written for the obt run
    return base, cfg


def held_out_visitors(base: Path, cfg: SimulationConfig) -> list[visitors.Visitor]:
    prepared = base / cfg.prepared
    opts = visitors.prepared_options(prepared)
    timeline = visitors.read_timeline(get_source(opts["source"]), base / cfg.raw,
                                      user_aware=opts["user_aware"],
                                      session_method=opts["session_method"])
    cutoff = visitors.training_cutoff(prepared)
    events = visitors.held_out(timeline, cutoff, cfg.days)
    assert events["ts"].min() > cutoff  # nothing the models were trained on
    everyone, _ = visitors.build_visitors(events)
    return visitors.sample_visitors(everyone, cfg.max_visitors, cfg.seed)


def simulate(base: Path, cfg: SimulationConfig, chosen: list, log_url: str,
             concurrency: int, time_compression: float = 0.0) -> dict:
    settings = ServeSettings(experiment=str(base / cfg.experiment), event_log=log_url)
    with InProcessServer(create_app(settings)) as api:
        return asyncio.run(replay(chosen, api.url, seed=cfg.seed, slots=cfg.slots,
                                  clicks=cfg.clicks, concurrency=concurrency,
                                  time_compression=time_compression, progress=False))


FEEDBACK = ["kind", "idempotency_key", "variant", "unit_id", "user_id", "session_id",
            "product_ids", "prices", "order_id", "ts", "orphan"]


def outcome(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The log without what differs by design (seq, arrival, server-drawn ids)."""
    feedback = frame.filter(pl.col("kind").is_in(["impression", "click", "purchase"]))
    recs = frame.filter(pl.col("kind") == "recommendation").select(
        "variant", "unit_id", "session_id", "product_ids", "ts", "fallback")
    return (feedback.select(FEEDBACK).sort("idempotency_key"),
            recs.sort("session_id", "ts", "variant"))


def test_replay_through_the_live_api_is_logged_and_reproducible(world, tmp_path: Path) -> None:
    base, cfg = world
    experiment = load_experiment(base / cfg.experiment)
    prerequisites.check_trained_on(experiment, base / cfg.prepared)
    chosen = held_out_visitors(base, cfg)
    n_views = sum(len(v.views) for v in chosen)
    n_orders = sum(len(v.orders) for v in chosen)
    assert len(chosen) == 6 and n_orders > 0

    url_a, url_b = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    first = simulate(base, cfg, chosen, url_a, concurrency=4)
    assert first["errors"] == 0
    assert first["sent"]["events"] == n_views == first["sent"]["impressions"]
    assert first["sent"]["purchases"] == n_orders
    assert 0 < first["sent"]["clicks"] < n_views
    with open_event_log(url_a) as log:
        counts = log.counts("tiny")
        frame_a = log.read_frame("tiny")
    assert counts["recommendation"] == counts["impression"] == n_views
    assert counts["click"] == first["sent"]["clicks"] and counts["purchase"] == n_orders
    assert counts["assignment"] == len(chosen)
    assert set(frame_a["variant"].drop_nulls()) == {"control", "gru4rec"}
    clicks = frame_a.filter(pl.col("kind") == "click")
    assert not clicks["orphan"].any()

    # Paced on the wall clock (4 simulated days in about a second), one request at a time:
    # the same events (the visitors' randomness is their own).
    paced = simulate(base, cfg, chosen, url_b, concurrency=1, time_compression=4 * 86400.0)
    assert paced["errors"] == 0
    with open_event_log(url_b) as log:
        frame_b = log.read_frame("tiny")
    for a, b in zip(outcome(frame_a), outcome(frame_b), strict=True):
        assert a.equals(b)

    # A re-run with the same seed against the same log is deduplicated: no feedback twice.
    again = simulate(base, cfg, chosen, url_a, concurrency=4)
    assert again["feedback"]["impressions:duplicate"] == n_views
    assert again["feedback"]["purchases:duplicate"] == n_orders
    with open_event_log(url_a) as log:
        after = log.counts("tiny")
        payload_frame = log.read_frame("tiny")
    assert {k: after[k] for k in ("impression", "click", "purchase")} == {
        k: counts[k] for k in ("impression", "click", "purchase")}

    # The docs section renders from the report's payload.
    report = analyse(payload_frame, experiment, n_boot=0, sequential=False)
    summary = {**first, "dataset": "tiny", "experiment": "tiny", "command": "sessionrec ...",
               "machine": "test", "started": "2024-01-01T00:00:00", "cutoff": "2024-01-08",
               "prepared_split": "time", "held_out": {"visitors": 99}, "visitors": 6,
               "views": n_views, "orders": n_orders, "logged": after, "offline": {},
               "simulated": {"first": "2024-01-09", "last": "2024-01-12", "days": 3.9,
                             "days_asked": 4.0}}
    doc = tmp_path / "experiments.md"
    write_section(doc, summary, report)
    text = doc.read_text()
    assert "| control |" in text and "| gru4rec |" in text and "## How" in text
    write_section(doc, summary, report)  # a second write replaces the section
    assert doc.read_text().count("<!-- BEGIN simulate:tiny -->") == 1


def test_variants_trained_on_other_data_are_refused(world, tmp_path: Path) -> None:
    base, cfg = world
    other = tmp_path / "other"
    prerequisites.build(SimulationConfig(
        experiment="x", prepared="data", raw=str(base / "raw"),
        build=BuildConfig(source="galaxus", prepare={
            "split": {"method": "time", "test_days": 2.0, "valid": False},
            "filter": {"min_user_sessions": 2}})), other, say=lambda _: None)
    experiment = load_experiment(base / cfg.experiment)
    with pytest.raises(ConfigError, match="trained on vocabulary"):
        prerequisites.check_trained_on(experiment, other / "data")


def test_simulation_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('experiment = "e.toml"\n')
    with pytest.raises(ConfigError, match="prepared is missing"):
        load_simulation(path)
    path.write_text('experiment = "e.toml"\nprepared = "d"\nslots = 0\n')
    with pytest.raises(ConfigError, match="slots"):
        load_simulation(path)
    path.write_text('experiment = "e.toml"\nprepared = "d"\n[clicks]\nbase = 2.0\n')
    with pytest.raises(ConfigError, match=r"clicks\.base"):
        load_simulation(path)
    path.write_text('experiment = "e.toml"\nprepared = "d"\n[build.runs.r]\nparams = {}\n')
    with pytest.raises(ConfigError, match=r"^simulation config .*sim.toml: build\.runs\.r\.model: "
                                          r"is missing$"):
        load_simulation(path)
    path.write_text('experiment = "e.toml"\nprepared = "d"\n')
    cfg = load_simulation(path, ("seed=3", "clicks.noise=0.0"))
    assert (cfg.seed, cfg.clicks.base, cfg.clicks.noise, cfg.slots) == (3, 0.3, 0.0, 5)


def test_simulate_command_serves_a_subprocess_and_writes_its_outputs(world, tmp_path: Path,
                                                                     capsys) -> None:
    import json

    from sessionrec.cli import main

    base, _ = world
    sim = base / "sim.toml"
    sim.write_text('experiment = "exp.toml"\nprepared = "data"\nraw = "raw"\ndays = 4\n'
                   'max_visitors = 3\nconcurrency = 2\n')
    out = tmp_path / "out"
    code = main(["experiment", "simulate", "--config", str(sim), "--out", str(out),
                 "--no-progress", "--no-report", "--seed", "1"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["visitors"] == 3 and summary["seed"] == 1 and summary["errors"] == 0
    assert summary["logged"]["impression"] == summary["views"]
    assert summary["logged"]["purchase"] == summary["orders"]
    assert summary["prepared_split"] == "time" and summary["cutoff"] < summary["simulated"][
        "first"]
    assert (out / "events.db").is_file() and (out / "simulation.toml").is_file()
    assert main(["experiment", "simulate", "--config", str(sim), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
