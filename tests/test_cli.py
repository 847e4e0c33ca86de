"""The command line end to end, on generated data (no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sessionrec.cli import main

SMALL = ["--set", "filter.min_user_sessions=2", "--set", "filter.min_item_support=2"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    assert main(["synth", "--events", "30000", "--seed", "3", "--out", str(root / "raw"),
                 "--events-per-shard", "5000"]) == 0
    assert main(["prepare", "--source", "galaxus", "--input", str(root / "raw"),
                 "--out", str(root / "data"), *SMALL]) == 0
    return root / "data"


def test_prepare_writes_splits_and_manifest(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["source"] == "galaxus"
    assert manifest["counts"]["raw_events"] == 30_000
    assert manifest["counts"]["bot_user_agents"] > 0
    for split in ("train", "valid", "test"):
        assert pl.read_parquet(prepared / f"{split}.parquet").height > 0


def test_stats_json_matches_files(prepared, capsys):
    assert main(["stats", str(prepared), "--json", "--plots", str(prepared.parent / "plots")]) == 0
    stats = json.loads(capsys.readouterr().out)
    train = pl.read_parquet(prepared / "train.parquet")
    assert stats["train"]["events"] == train.height
    assert stats["train"]["sessions"] == train["session_id"].n_unique()
    assert (prepared.parent / "plots" / "events_per_item.png").stat().st_size > 0


def test_train_writes_metrics_and_config(prepared, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'[data]\nprepared = "{prepared.as_posix()}"\ndataset = "synthetic"\n'
                      '[model]\nname = "sr"\n[model.params]\nsteps = 5\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--set", "eval.ks=[5, 20]",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "sr" and metrics["dataset"] == "synthetic"
    assert metrics["protocol"] == "next-item" and metrics["ties"] == "pessimistic"
    assert set(metrics["metrics"]) >= {"recall@20", "mrr@20", "ndcg@20", "recall@5"}
    assert metrics["params"]["steps"] == 5
    assert metrics["train"]["events_per_s"] > 0
    ranks = pl.read_parquet(out / "ranks.parquet")
    assert ranks.height == metrics["n_predictions"]
    assert (ranks["rank"] <= 20).mean() == pytest.approx(metrics["metrics"]["recall@20"])
    assert "steps = 5" in (out / "config.toml").read_text()


def test_train_gru4rec_config_and_resume(prepared, tmp_path):
    config = tmp_path / "gru.toml"
    config.write_text(f'[data]\nprepared = "{prepared.as_posix()}"\n'
                      '[model]\nname = "gru4rec"\n[model.params]\nlayers = [16]\n'
                      'n_epochs = 2\nn_sample = 32\nbatch_size = 16\nprogress = false\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["epochs"] == 2
    assert metrics["train"]["events_per_s"] > 0
    assert (out / "checkpoints" / "last.pt").is_file()
    # Resuming a finished run with more epochs trains only the new ones.
    assert main(["train", "--config", str(config), "--set", "model.params.n_epochs=3",
                 "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["train"]["history"]["resumed_from_epoch"] == 2
    assert [e["epoch"] for e in again["train"]["history"]["epochs"]] == [1, 2, 3]


def test_train_refuses_a_non_empty_run_dir(prepared, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "x").write_text("")
    assert main(["train", "--set", "model.name=pop", "--set",
                 f"data.prepared={prepared.as_posix()}", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume where there is nothing to resume does not overwrite the run either.
    assert main(["train", "--set", "model.name=pop", "--set",
                 f"data.prepared={prepared.as_posix()}", "--out", str(out), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_evaluate_compares_models(prepared, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--data", str(prepared), "--models", "pop", "markov",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["runs"]] == ["pop", "markov"]
    diff = results["differences"]["markov"]["mrr@20"]
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    assert "| markov |" in (out / "results.md").read_text()


def test_evaluate_with_two_jobs_gives_the_same_results_in_model_order(prepared, tmp_path):
    args = ["evaluate", "--data", str(prepared), "--models", "pop", "markov", "gru4rec",
            "--param", "gru4rec.n_epochs=1", "--param", "gru4rec.n_sample=64"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert [r["model"] for r in two["runs"]] == ["pop", "markov", "gru4rec"]
    assert [r["metrics"] for r in two["runs"]] == [r["metrics"] for r in one["runs"]]
    assert two["differences"] == one["differences"]
    assert (tmp_path / "two" / "results.md").read_text() == \
        (tmp_path / "one" / "results.md").read_text()


def test_evaluate_refuses_zero_jobs(prepared, tmp_path, capsys):
    assert main(["evaluate", "--data", str(prepared), "--models", "pop", "--out",
                 str(tmp_path / "x"), "--jobs", "0"]) == 2
    assert "--jobs must be 1 or more, got 0" in capsys.readouterr().err


def test_unknown_model_is_a_clean_error(prepared, tmp_path, capsys):
    code = main(["evaluate", "--data", str(prepared), "--models", "nope", "--out",
                 str(tmp_path / "x")])
    assert code == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_bad_override_is_a_clean_error(tmp_path, capsys):
    code = main(["prepare", "--source", "galaxus", "--input", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--set", "filter.min_item_supprt=3"])
    assert code == 2
    assert "unknown config key filter.min_item_supprt" in capsys.readouterr().err


def test_quickstart_runs_everything(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--events", "40000"]) == 0
    out = capsys.readouterr().out
    assert "| Property |" in out and "| vsknn |" in out
    assert (tmp_path / "qs" / "runs" / "vsknn" / "metrics.json").is_file()


def test_progress_is_line_records_when_redirected_and_q_silences_it(prepared, tmp_path, capsys):
    assert main(["evaluate", "--data", str(prepared), "--models", "pop", "--out",
                 str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "evaluate pop: " in err and "predictions/s)" in err  # the summary line
    assert "\r" not in err  # no bar redraws in a redirected stream
    assert main(["-q", "evaluate", "--data", str(prepared), "--models", "pop", "--out",
                 str(tmp_path / "b")]) == 0
    assert "evaluate pop: " not in capsys.readouterr().err
