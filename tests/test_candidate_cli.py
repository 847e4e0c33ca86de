"""``sessionrec prepare / train / evaluate`` for click-probability models on exposure data."""

from __future__ import annotations

import json

import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.data.exposures.synth import write_sample

TINY = ["model.params.n_epochs=1", "model.params.embedding=8", "model.params.hidden=8",
        "model.params.mlp=8", "model.params.progress=false"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("cand")
    write_sample(root / "raw", users=60, per_user=12)
    assert main(["prepare", "--source", "kuairand", "--input", str(root / "raw"), "--out",
                 str(root / "data")]) == 0
    return root / "data"


def test_train_writes_a_candidate_run(prepared, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(prepared), "--out", str(out), "--set", "model.name=alpine",
            "--set", "eval.protocol=candidate-ranking", "--set", "eval.ks=[10, 50]"]
    for s in TINY:
        args += ["--set", s]
    assert main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"] == "candidate-ranking" and m["model"] == "alpine"
    assert set(m["metrics"]) == {"auc", "p@10", "r@10", "f@10", "p@50", "r@50", "f@50"}
    users = pl.read_parquet(out / "users.parquet")
    assert users.height == m["counts"]["auc_users"]
    assert users["auc"].mean() == pytest.approx(m["metrics"]["auc"])
    assert (out / "model" / "weights.pt").is_file() and (out / "config.toml").is_file()
    assert "AUC" in capsys.readouterr().out


def test_evaluate_compares_models_with_a_t_test(prepared, tmp_path):
    args = ["evaluate", "--protocol", "candidate-ranking", "--data", str(prepared),
            "--models", "bpr-mf", "ncf", "--out", str(tmp_path / "cmp")]
    for model in ("bpr-mf", "ncf"):
        for s in TINY:
            args += ["--param", f"{model}.{s.split('.', 2)[2]}"]
    assert main(args) == 0
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert res["paired_vs"] == "bpr-mf" and set(res["tests"]) == {"ncf"}
    assert "t" in res["tests"]["ncf"] and "boot_low" in res["tests"]["ncf"]


def test_unknown_click_model_is_refused_before_training(prepared, tmp_path, capsys):
    assert main(["train", "--data", str(prepared), "--out", str(tmp_path / "x"), "--set",
                 "model.name=alpin", "--set", "eval.protocol=candidate-ranking"]) != 0
    assert "did you mean 'alpine'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
