"""scripts/literature_doc.py: the table is computed from the runs' files (by hand here)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sessionrec.errors import DataError
from tests.scripts_loader import load_script


def _script():
    return load_script("literature_doc")


def _run(root: Path, name: str, model: str, ranks: list[int], train: dict,
         targets: tuple[int, ...] = (10, 11, 12)) -> None:
    d = root / name
    d.mkdir(parents=True)
    hr = [sum(r <= k for r in ranks) / len(ranks) for k in (10, 20)]
    mrr = [sum(1 / r for r in ranks if r <= k) / len(ranks) for k in (10, 20)]
    (d / "metrics.json").write_text(json.dumps({
        "model": model, "n_predictions": len(ranks), "train": train,
        "metrics": {"recall@10": hr[0], "recall@20": hr[1], "mrr@10": mrr[0],
                    "mrr@20": mrr[1]}}), encoding="utf-8")
    pl.DataFrame({"target_event": list(targets), "session": [0, 1, 1],
                  "position": [1, 1, 2], "rank": ranks}).write_parquet(d / "ranks.parquet")


def test_table_by_hand(tmp_path: Path) -> None:
    doc = _script()
    _run(tmp_path, "vsknn", "vsknn", [1, 30, 2], {"seconds": 6.0})
    _run(tmp_path, "narm", "narm", [1, 5, 25],
         {"seconds": 700.0, "train_seconds": 600.0, "epochs": 3, "peak_rss_mb": 1234.0})
    text = doc.section(tmp_path, "vsknn", n_boot=50)
    narm = next(line for line in text.splitlines() if line.startswith("| `narm`"))
    cells = [c.strip() for c in narm.strip("|").split("|")]
    # HR@20 2/3 both; MRR@20 (1 + 1/5) / 3 = 40.00 vs (1 + 1/2) / 3 = 50.00 -> -10.00
    assert cells[2:6] == ["66.67", "40.00", "66.67", "40.00"]
    assert cells[6].startswith("+0.00") and cells[7].startswith("-10.00")
    assert cells[8:12] == ["10.00", "1,234", "3", "49.70 / 16.17"]
    # sorted by MRR@20: vsknn (50.00) first
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `vsknn`")
    assert "**not met**" in text


def test_runs_on_other_test_cases_are_refused(tmp_path: Path) -> None:
    doc = _script()
    _run(tmp_path, "vsknn", "vsknn", [1, 30, 2], {"seconds": 6.0})
    _run(tmp_path, "other", "narm", [1, 5, 25], {"seconds": 1.0}, targets=(10, 11, 13))
    with pytest.raises(DataError, match="not evaluated on the same prepared test split"):
        doc.section(tmp_path, "vsknn", n_boot=10)
    with pytest.raises(DataError, match="no baseline run 'sknn'"):
        doc.section(tmp_path, "sknn", n_boot=10)


def test_stmp_gets_no_paper_figure_of_stamp(tmp_path: Path) -> None:
    doc = _script()
    for name, attention in (("stamp", True), ("stmp", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"model": "stamp", "params": {"attention": attention}}), encoding="utf-8")
    runs = {name: doc.Run(name, tmp_path / name, json.loads(
        (tmp_path / name / "metrics.json").read_text(encoding="utf-8")), pl.DataFrame())
        for name in ("stamp", "stmp")}
    assert doc.paper_figure(runs["stamp"]) == (45.64, 14.32)
    assert doc.paper_figure(runs["stmp"]) is None


def test_small_dataset_section_has_no_paper_column_and_skips_valid_runs(tmp_path: Path) -> None:
    doc = _script()
    _run(tmp_path, "vsknn", "vsknn", [1, 30, 2], {"seconds": 6.0})
    _run(tmp_path, "narm", "narm", [1, 5, 25], {"seconds": 6.0, "epochs": 4})
    _run(tmp_path / "_valid", "narm", "narm", [1, 1, 1], {"seconds": 6.0})
    text = doc.section(tmp_path, "vsknn", n_boot=20, dataset="yoochoose-100k")
    assert text.startswith("## yoochoose-100k: the session models of the literature")
    assert "paper HR@20" not in text and "Goal" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`vsknn`", "`narm`"]
    narm = [c.strip() for c in rows[1].strip("|").split("|")]
    assert narm[10:] == ["4", "3"]  # epochs, predictions: no paper cell between them
