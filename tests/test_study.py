"""The four-variant study: configuration, variant parameters, paired comparisons over seeds,
figures, and `sessionrec study` end to end on generated data (resume, refusal)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.config import load_config
from sessionrec.errors import ConfigError
from sessionrec.reports.study_plots import pca_2d, top_labels
from sessionrec.runs import RANKS_FILE
from sessionrec.study import (
    VARIANTS,
    StudyConfig,
    compare,
    run_dir,
    seed_mean_values,
    variant_params,
)

TINY = """
[data]
dataset = "tiny"
prepared = "{prepared}"

[model]
name = "hgru4rec"

[model.params]
layers = [16]
batch_size = 16
n_sample = 32
n_epochs = 2
optimizer = "adagrad"
learning_rate = 0.05
progress = false
threads = 1
eval_lanes = 64

[embedding]
dim = 8
epochs = 1

[eval]
ks = [5, 10, 20]
threads = 1

[study]
seeds = [0, 1]
user_layers = [8]
n_boot = 200
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    assert main(["synth", "--events", "12000", "--seed", "5", "--out", str(root / "raw")]) == 0
    assert main(["prepare", "--source", "galaxus", "--input", str(root / "raw"),
                 "--out", str(root / "data"), "--set", "filter.min_user_sessions=3",
                 "--set", "filter.min_item_support=2"]) == 0
    return root / "data"


def tiny_config(tmp_path: Path, prepared: Path, extra: str = "") -> Path:
    path = tmp_path / "study.toml"
    path.write_text(TINY.format(prepared=prepared.as_posix()) + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize(("override", "message"), [
    ("model.name=gru4rec", "must be 'hgru4rec'"),
    ('study.variants=["OnlySession-OneHot", "Both"]', "unknown or repeated"),
    ("study.seeds=[1, 1]", "distinct"),
    ("eval.ks=[10, 20]", r"must include \[5, 10, 20\]"),
    ('model.item_vectors="x.parquet"', "leave model.item_vectors empty"),
    ("study.n_boot=10", "n_boot"),
])
def test_bad_study_config_names_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(StudyConfig, overrides=[override])


def test_variant_parameters_switch_one_factor_each():
    cfg = load_config(StudyConfig, overrides=["model.params.layers=[32]",
                                              "model.params.user_propagation=\"all\"",
                                              "study.user_layers=[12]"])
    only_onehot = variant_params(cfg, "OnlySession-OneHot", 7)
    assert only_onehot == {"layers": [32], "user_layers": [], "user_propagation": "init",
                           "user_to_output": False, "constrained_embedding": False,
                           "embedding": 0, "item_vectors": "", "seed": 7}
    with_emb = variant_params(cfg, "WithUser-Embedding", 1)
    assert with_emb == {"layers": [32], "user_layers": [12], "user_propagation": "all",
                        "seed": 1}
    assert set(VARIANTS) == {"OnlySession-OneHot", "OnlySession-Embedding",
                             "WithUser-OneHot", "WithUser-Embedding"}


def _fake_run(out: Path, variant: str, seed: int, ranks: list[int]) -> None:
    where = run_dir(out, variant, seed)
    where.mkdir(parents=True)
    # written in another order than target_event: readers must align by target event
    pl.DataFrame({"target_event": [3, 1, 2, 0], "session": [1, 0, 1, 0],
                  "position": [1, 1, 2, 2], "rank": ranks}).write_parquet(where / RANKS_FILE)


def test_paired_comparison_averages_seeds_per_prediction(tmp_path):
    cfg = load_config(StudyConfig, overrides=["study.seeds=[0, 1]", "study.n_boot=200"])
    # rows are target events 3, 1, 2, 0
    _fake_run(tmp_path, "WithUser-OneHot", 0, [1, 1, 2, 4])
    _fake_run(tmp_path, "WithUser-OneHot", 1, [1, 2, 2, 4])
    _fake_run(tmp_path, "OnlySession-OneHot", 0, [2, 1, 4, 4])
    _fake_run(tmp_path, "OnlySession-OneHot", 1, [2, 1, 4, 4])
    target, session, values = seed_mean_values(tmp_path, "WithUser-OneHot", (0, 1), "mrr@20")
    assert target.tolist() == [0, 1, 2, 3]
    assert session.tolist() == [0, 0, 1, 1]
    # target 0: 1/4 both seeds; 1: (1 + 1/2) / 2; 2: 1/2; 3: 1
    assert values.tolist() == pytest.approx([0.25, 0.75, 0.5, 1.0])
    result = compare(tmp_path, cfg, "WithUser-OneHot", "OnlySession-OneHot", "mrr@20")
    # OnlySession per target: 0.25, 1, 0.25, 0.5 -> differences 0, -0.25, 0.25, 0.5
    assert result["estimate"] == pytest.approx(0.125)
    # per seed: seed 0 mean(1/4,1,1/2,1)=0.6875 - 0.5; seed 1 mean(1/4,1/2,1/2,1)=0.5625 - 0.5
    assert result["per_seed"] == pytest.approx([0.1875, 0.0625])
    assert result["n_clusters"] == 2


def test_pca_and_label_grouping_by_hand():
    x = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    scores, ratio = pca_2d(x)
    assert ratio == pytest.approx([0.8, 0.2])
    assert np.abs(scores[:, 0]).tolist() == pytest.approx([2, 2, 0, 0])
    labels = top_labels(np.array(["a", "b", "a", None, "c", "a", "b"], dtype=object), 2)
    assert labels.tolist() == ["a", "b", "a", "unknown", "other", "a", "b"]


def test_study_end_to_end_resumes_and_refuses_another_config(prepared, tmp_path, capsys):
    config = tiny_config(tmp_path, prepared)
    out = tmp_path / "out"
    assert main(["study", "--config", str(config), "--out", str(out)]) == 0
    summary = json.loads((out / "study.json").read_text())
    assert list(summary["variants"]) == list(VARIANTS)
    for variant in VARIANTS:
        for seed in (0, 1):
            run = run_dir(out, variant, seed)
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["model"] == "hgru4rec" and (run / "config.toml").is_file()
            assert metrics["train"]["user_history_through_valid"] is True
            expected_users = 8 if variant.startswith("WithUser") else 0
            assert metrics["params"]["user_layers"] == ([expected_users] if expected_users
                                                        else [])
            assert (metrics["params"]["item_vectors"] == "frozen") == \
                variant.endswith("Embedding")
        stats = summary["variants"][variant]
        assert len(stats["metrics"]["mrr@20"]["values"]) == 2
        assert stats["seconds_per_epoch"]["mean"] > 0
    assert set(summary["comparisons"]) == {
        "WithUser-OneHot vs OnlySession-OneHot", "WithUser-Embedding vs OnlySession-Embedding",
        "OnlySession-Embedding vs OnlySession-OneHot", "WithUser-Embedding vs WithUser-OneHot"}
    assert summary["data"]["item_metadata"] == ["brand", "category", "price"]
    for name in ("mrr_at_20.png", "recall_at_5.png", "pca_items.png", "pca_users.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    assert (out / "embeddings" / "seed1.parquet").is_file()
    text = (out / "study.md").read_text()
    assert "| WithUser-Embedding |" in text and "pca_users.png" in text

    # a second call finds every run finished and only summarises again
    stamp = (run_dir(out, "WithUser-OneHot", 0) / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["study", "--config", str(config), "--out", str(out)]) == 0
    assert (run_dir(out, "WithUser-OneHot", 0) / "metrics.json").stat().st_mtime_ns == stamp

    # another model configuration in the same OUT is refused, naming the file
    assert main(["study", "--config", str(config), "--out", str(out),
                 "--set", "model.params.layers=[24]"]) == 2
    assert "holds a study with another configuration" in capsys.readouterr().err


def test_an_out_dir_with_an_unreadable_study_is_refused_naming_the_key(tmp_path):
    from sessionrec.study import STUDY_FILE, check_out_dir

    (tmp_path / STUDY_FILE).write_text('[study]\nsedes = [1]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"holds no study this version can read: study "
                                          r"configuration .*study.toml: unknown config key "
                                          r"study.sedes \(did you mean 'seeds'\?"):
        check_out_dir(load_config(StudyConfig), tmp_path)
