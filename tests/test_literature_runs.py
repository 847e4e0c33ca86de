"""scripts/literature_runs.py: the configs it writes and what it reads back from runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionrec.config import load_config
from sessionrec.errors import DataError
from sessionrec.runs import RunConfig
from tests.scripts_loader import load_script


def _script():
    return load_script("literature_runs")


def test_valid_and_full_configs_differ_only_in_epochs(tmp_path: Path) -> None:
    runs = _script()
    valid = runs.epochs_config("narm", "yoochoose-100k", n_epochs=30, patience=3)
    full = runs.epochs_config("narm", "yoochoose-100k", n_epochs=7, patience=0)
    assert valid["data"] == {"dataset": "yoochoose-100k", "source": "yoochoose"}
    p, q = valid["model"]["params"], full["model"]["params"]
    assert (p["n_epochs"], p["patience"], q["n_epochs"], q["patience"]) == (30, 3, 7, 0)
    # the Diginetica config's sampled softmax becomes the full one on a small catalogue
    assert p["n_sample"] == -1 and "logq" not in p and "sample_alpha" not in p
    assert {k: v for k, v in p.items() if k not in ("n_epochs", "patience")} == \
        {k: v for k, v in q.items() if k not in ("n_epochs", "patience")}
    # what it writes is a config `sessionrec train` accepts
    path = tmp_path / "narm.toml"
    path.write_text(runs.dump_toml(full), encoding="utf-8")
    cfg = load_config(RunConfig, path)
    assert cfg.model.name == "narm" and cfg.model.params["n_epochs"] == 7


def test_gru4rec_keeps_its_official_loss_and_sampling() -> None:
    runs = _script()
    p = runs.base_config("gru4rec", "retailrocket")["model"]["params"]
    assert (p["loss"], p["n_sample"], p["layers"]) == ("bpr-max", 2048, [224])


def test_hybrid_chooses_weights_on_valid_then_fixes_them(tmp_path: Path) -> None:
    runs = _script()
    valid = runs.hybrid_config("hybrid-vsknn-gcegnn", tmp_path / "_valid" / "gcegnn", None,
                               "retailrocket")["model"]["params"]
    assert "weights" not in valid and valid["grid"] == 10
    assert valid["components"] == [{"name": "vsknn"},
                                   {"run": str(tmp_path / "_valid" / "gcegnn")}]
    full = runs.hybrid_config("hybrid-vsknn-gcegnn", tmp_path / "gcegnn", [0.3, 0.7],
                              "retailrocket")["model"]["params"]
    assert full["weights"] == [0.3, 0.7]


def _metrics(run: Path, train: dict) -> None:
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"train": train}), encoding="utf-8")


def test_reads_best_epoch_and_weights_or_says_what_is_missing(tmp_path: Path) -> None:
    runs = _script()
    _metrics(tmp_path / "a", {"history": {"best_epoch": 4, "epochs": []}, "weights": [1, 0]})
    assert runs.best_epoch(tmp_path / "a") == 4
    assert runs.chosen_weights(tmp_path / "a") == [1.0, 0.0]
    _metrics(tmp_path / "b", {"history": {"best_epoch": None}})
    with pytest.raises(DataError, match="no best validation epoch"):
        runs.best_epoch(tmp_path / "b")
    with pytest.raises(DataError, match="no chosen weights"):
        runs.chosen_weights(tmp_path / "b")


def test_retailrocket_turns_off_the_step_decay_where_a_model_has_one() -> None:
    runs = _script()
    assert runs.base_config("srgnn", "retailrocket")["model"]["params"]["lr_decay"] == 1.0
    assert runs.base_config("srgnn", "yoochoose-100k")["model"]["params"]["lr_decay"] == 0.1
    assert "lr_decay" not in runs.base_config("narm", "retailrocket")["model"]["params"]
