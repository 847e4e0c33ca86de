"""sessionrec retrain / rollback against the in-process app (its real /admin endpoints).

Six synthetic days (``sessionrec synth``); the live models are fitted on a window ending
after day 3, the retrains read windows ending after day 6 (the last day held out).
Sequential rules (sr) follow the synthetic sessions' ring steps, popularity does not, so
sr beats pop by a wide margin on the held-out day: sr replacing a live pop is promoted,
pop replacing a live sr is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sessionrec.config import load_config
from sessionrec.data.synth import START, generate
from sessionrec.errors import SessionRecError
from sessionrec.evaluation import evaluate
from sessionrec.loop.admin import AdminChannel
from sessionrec.loop.config import LoopConfig
from sessionrec.loop.history import read_history
from sessionrec.loop.lock import LoopBusy, loop_lock
from sessionrec.loop.retrain import retrain, rollback
from sessionrec.loop.window import prepare_window
from sessionrec.runs import (
    DataConfig,
    ModelConfig,
    RunConfig,
    build_model,
    load_splits,
    write_run,
)
from sessionrec.serving.app import create_app
from tests.serving.helpers import TestClient, settings

PREPARE = {"filter": {"min_item_support": 2, "min_user_sessions": 1}}
DAY3 = START + timedelta(days=3)
DAY6 = START + timedelta(days=6)


def loop_config(root: Path, raw: Path, model: str, **decision) -> LoopConfig:
    return load_config(LoopConfig, base={
        "root": str(root), "model": {"name": model},
        "data": {"raw": str(raw), "window_days": 6, "holdout_days": 1, "prepare": PREPARE},
        "decision": decision})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The raw days and two live runs (pop, sr) fitted on the window ending after day 3."""
    base = tmp_path_factory.mktemp("loop")
    raw = base / "raw"
    generate(raw, 9000, seed=3, n_users=150, n_items=120, events_per_shard=1500)
    runs = {}
    for name in ("pop", "sr"):
        cfg = loop_config(base / "unused", raw, name)
        run_dir = base / "live" / name
        run_dir.mkdir(parents=True)
        data_dir, _, _ = prepare_window(cfg.data, run_dir, DAY3)
        splits = load_splits(data_dir)
        model = build_model(cfg.model).fit(splits.train)
        result = evaluate(model, splits.train, splits.test)
        write_run(run_dir, RunConfig(data=DataConfig(prepared=str(data_dir)),
                                     model=ModelConfig(name=name)), model, splits, result, {})
        runs[name] = run_dir
    return raw, runs


def served(live_run: Path):
    app = create_app(settings(model=str(live_run), admin_token="secret"))
    return TestClient(app)


def test_a_better_candidate_is_promoted_and_rollback_restores_the_live_model(world, tmp_path):
    raw, runs = world
    cfg = loop_config(tmp_path / "loop", raw, "sr", margin=0.0)
    with served(runs["pop"]) as client:
        channel = AdminChannel(client, "secret")
        before = channel.live()
        out = retrain(cfg, channel, DAY6)
        assert out.decision == "promoted", out.reason
        rec = json.loads((out.run_dir / "metrics.json").read_text())
        assert rec["candidate"]["recall@20"] > rec["live"]["recall@20"] + 0.05
        assert rec["n_predictions"] > 100 and rec["difference"]["estimate"] > 0
        assert (out.run_dir / "config.toml").is_file()
        assert (out.run_dir / "candidate" / "metrics.json").is_file()
        now = channel.live()
        assert now["model"] == "sr" and now["model_dir"] == str(
            (out.run_dir / "candidate" / "model").resolve())
        assert client.post("/v1/events", json={"session_id": "a", "product_id": 1}
                           ).status_code == 200
        assert [e["previous"]["tag"] for e in read_history(cfg_root(cfg))] == [before["tag"]]
        back = rollback(cfg, channel)
        assert back.decision == "rolled_back"
        assert channel.live()["tag"] == before["tag"]
        assert read_history(cfg_root(cfg)) == []
        with pytest.raises(SessionRecError, match="nothing to roll back"):
            rollback(cfg, channel)


def cfg_root(cfg: LoopConfig) -> Path:
    return Path(cfg.root)


def test_a_worse_candidate_is_refused_and_the_live_model_stays(world, tmp_path):
    raw, runs = world
    cfg = loop_config(tmp_path / "loop", raw, "pop", margin=0.01)
    with served(runs["sr"]) as client:
        channel = AdminChannel(client, "secret")
        before = channel.live()
        out = retrain(cfg, channel, DAY6)
        assert out.decision == "refused" and "worse beyond the margin" in out.reason
        rec = json.loads((out.run_dir / "metrics.json").read_text())
        assert rec["candidate"]["recall@20"] < rec["live"]["recall@20"] - 0.01
        assert channel.live()["tag"] == before["tag"]
        assert read_history(cfg_root(cfg)) == []


def test_a_second_retrain_waits_for_nobody_it_stops_and_says_who_holds_the_lock(world,
                                                                                 tmp_path):
    raw, runs = world
    cfg = loop_config(tmp_path / "loop", raw, "sr")
    with served(runs["pop"]) as client:
        channel = AdminChannel(client, "secret")
        before = channel.live()
        with loop_lock(Path(cfg.root), "retrain"):  # another retrain is running
            with pytest.raises(LoopBusy, match=f"retrain pid {os.getpid()}"):
                retrain(cfg, channel, DAY6)
            with pytest.raises(LoopBusy):
                rollback(cfg, channel)
        assert not (Path(cfg.root) / "runs").exists()  # nothing started
        assert channel.live()["tag"] == before["tag"]


def test_the_lock_is_held_across_processes_and_freed_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from sessionrec.loop.lock import loop_lock\n"
         f"with loop_lock(Path({str(tmp_path)!r}), 'retrain'):\n"
         "    print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LoopBusy, match=f"pid {holder.pid}"), loop_lock(tmp_path, "retrain"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with loop_lock(tmp_path, "retrain"):  # a killed holder leaves no lock behind
        pass


def test_an_empty_window_leaves_the_live_model_and_says_why(world, tmp_path):
    raw, runs = world
    cfg = loop_config(tmp_path / "loop", raw, "sr")
    with served(runs["pop"]) as client:
        channel = AdminChannel(client, "secret")
        before = channel.live()
        out = retrain(cfg, channel, START - timedelta(days=1))  # before the first event
        assert out.decision == "empty_window"
        assert "the live model stays" in out.reason and "no events" in out.reason
        rec = json.loads((out.run_dir / "metrics.json").read_text())
        assert rec["decision"] == "empty_window" and rec["live_model"]["tag"] == before["tag"]
        assert channel.live()["tag"] == before["tag"]


def test_a_failed_fit_leaves_the_live_model_and_keeps_the_traceback(world, tmp_path):
    raw, runs = world
    cfg = load_config(LoopConfig, base={
        "root": str(tmp_path / "loop"),
        "model": {"name": "obt", "params": {"orders": str(tmp_path / "no-orders.parquet")}},
        "data": {"raw": str(raw), "window_days": 6, "holdout_days": 1, "prepare": PREPARE}})
    with served(runs["pop"]) as client:
        channel = AdminChannel(client, "secret")
        before = channel.live()
        out = retrain(cfg, channel, DAY6)
        assert out.decision == "failed_fit"
        assert "obt model failed to train" in out.reason and "no orders file" in out.reason
        assert "Traceback" in (out.run_dir / "error.txt").read_text()
        assert channel.live()["tag"] == before["tag"]
        assert read_history(Path(cfg.root)) == []


def test_the_cli_prints_the_decision_and_exits_3_when_the_live_model_stays(
        world, tmp_path, monkeypatch, capsys):
    from sessionrec import cli
    from sessionrec.loop import admin

    raw, runs = world
    loop_toml = tmp_path / "loop.toml"
    loop_toml.write_text(f'root = "{tmp_path / "loop"}"\n[data]\nraw = "{raw}"\n'
                         'window_days = 6\nholdout_days = 1\n'
                         '[data.prepare.filter]\nmin_item_support = 2\nmin_user_sessions = 1\n'
                         '[model]\nname = "sr"\n[serve]\ntoken_env = "LOOP_TEST_TOKEN"\n')
    with served(runs["pop"]) as client:
        monkeypatch.setenv("LOOP_TEST_TOKEN", "secret")
        monkeypatch.setattr(admin, "channel_for",
                            lambda cfg: AdminChannel(client, os.environ[cfg.token_env]))
        assert cli.main(["retrain", "--config", str(loop_toml), "--until", "2024-01-07"]) == 0
        line = json.loads(capsys.readouterr().out)
        assert line["decision"] == "promoted"
        assert cli.main(["retrain", "--config", str(loop_toml), "--until", "2023-12-01"]) == 3
        assert json.loads(capsys.readouterr().out)["decision"] == "empty_window"
        assert cli.main(["rollback", "--config", str(loop_toml)]) == 0
        assert json.loads(capsys.readouterr().out)["decision"] == "rolled_back"
        assert client.get("/readyz").json()["model"]["model"] == "pop"


def test_no_admin_token_is_a_clear_error(tmp_path, monkeypatch):
    from sessionrec.loop.admin import AdminError, channel_for
    from sessionrec.loop.config import ServeConfig

    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    with pytest.raises(AdminError, match="NO_SUCH_TOKEN_VAR"):
        channel_for(ServeConfig(token_env="NO_SUCH_TOKEN_VAR"))


def test_the_loop_closes_serve_archive_retrain_promote(world, tmp_path):
    """Six days of views sent to the API's batch endpoint, archived, exported by the retrain
    (data.archive), and the candidate trained on them promoted over the same server."""
    import polars as pl

    raw, runs = world
    url = f"sqlite:///{(tmp_path / 'archive.db').as_posix()}"
    views = pl.read_parquet(raw / "events").sort("Timestamp")
    events = [{"idempotency_key": f"k{i}", "type": "view", "session_id": str(r["SessionId"]),
               "user_id": None if r["LastLoggedInUserId"] is None
               else str(r["LastLoggedInUserId"]),
               "product_id": r["ProductId"], "user_agent": r["UserAgent"],
               "timestamp": r["Timestamp"].isoformat()}
              for i, r in enumerate(views.iter_rows(named=True))]
    cfg = load_config(LoopConfig, base={
        "root": str(tmp_path / "loop"), "model": {"name": "sr"},
        "data": {"archive": url, "window_days": 6, "holdout_days": 1, "prepare": PREPARE}})
    app = create_app(settings(model=str(runs["pop"]), admin_token="secret", archive=url))
    with TestClient(app) as client:
        for lo in range(0, len(events), 200):  # the body limit admits ~200 with user agents
            r = client.post("/v1/events:batch", json={"events": events[lo:lo + 200]})
            assert r.json()["accepted"] == len(events[lo:lo + 200])
        out = retrain(cfg, AdminChannel(client, "secret"), DAY6)
        assert out.decision == "promoted", out.reason
        assert (out.run_dir / "raw" / "export.json").is_file()
        assert client.get("/readyz").json()["model"]["model"] == "sr"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "configs" /
                                         "loop").glob("*.toml")), ids=lambda p: p.name)
def test_every_committed_loop_config_loads_and_builds_its_model(path):
    from sessionrec.loop.config import load_loop_config

    build_model(load_loop_config(path).model)


def test_a_loop_config_needs_one_data_source_and_a_window_longer_than_the_holdout():
    from sessionrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"exactly one of data\.raw"):
        load_config(LoopConfig, base={"data": {"raw": "a", "archive": "sqlite:///b.db"}})
    with pytest.raises(ConfigError, match="must exceed"):
        load_config(LoopConfig, base={"data": {"raw": "a", "window_days": 1,
                                               "holdout_days": 1}})
    with pytest.raises(ConfigError, match=r"decision\.metric"):
        load_config(LoopConfig, base={"data": {"raw": "a"}, "decision": {"metric": "auc"}})
