"""scripts/alpine_doc.py: the budget sentence and the breakdown by history length."""

from __future__ import annotations

import polars as pl
import pytest

from tests.scripts_loader import load_script


@pytest.fixture(scope="module")
def doc():
    return load_script("alpine_doc")


def test_budget_reads_the_runs_parameters(doc):
    text = doc.budget({"learning_rate": 0.001, "batch_size": 256, "n_epochs": 20,
                       "patience": 3})
    assert text == ("Adam 0.001, 256 users per batch, at most 20 epochs with early stopping "
                    "on valid AUC (patience 3).")


def _run(root, label, seed, aucs):
    d = root / label / f"seed{seed}"
    d.mkdir(parents=True)
    pl.DataFrame({"user_idx": list(range(len(aucs))), "auc": aucs}).write_parquet(
        d / "users.parquet")
    return d


def test_by_history_splits_users_by_training_clicks(doc, tmp_path):
    # users 0-3: 1, 4, 8 and 12 training clicks (user 3's valid click does not count)
    rows = {"user_idx": [], "click": [], "split": []}
    for user, clicks in enumerate([1, 4, 8, 12]):
        rows["user_idx"] += [user] * (clicks + 2)
        rows["click"] += [1] * clicks + [0, 1]
        rows["split"] += [0] * (clicks + 1) + [1]
    data = tmp_path / "data"
    data.mkdir()
    pl.DataFrame(rows).write_parquet(data / "exposures.parquet")
    full = [_run(tmp_path, "alpine", s, [0.6, 0.7, 0.8, 0.9]) for s in (0, 1)]
    # seed 1 of the baseline has no partner: only seed 0 is compared
    best = [_run(tmp_path, "atrank", 0, [0.5, 0.7, 0.9, 0.6]),
            _run(tmp_path, "atrank", 2, [0.0, 0.0, 0.0, 0.0])]
    lines = doc.by_history({"alpine": full, "atrank": best}, "alpine", "atrank", data)
    rows_out = [line for line in lines if line.startswith("| ") and "users" not in line]
    # each default bucket (0-2, 3-5, 6-10, 11+) holds one user: too few for a test, no rows
    assert rows_out == []
    lines = doc.by_history({"alpine": full, "atrank": best}, "alpine", "atrank", data,
                           buckets=((0, 4), (5, None)))
    assert [line.split("|")[1].strip() for line in lines if line.startswith("| ")][1:] == [
        "0-4", "5 or more"]
    lines = doc.by_history({"alpine": full, "atrank": best}, "alpine", "atrank", data,
                           buckets=((0, None),))
    (row,) = [line for line in lines if line.startswith("| 0 or more")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "4"  # users
    assert cells[2] == "0.7500" and cells[3] == "0.6750"  # means of the common seed 0
    assert cells[4] == "+0.0750"
