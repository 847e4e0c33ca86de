"""scripts/recipe_doc.py: recipes side by side, computed from hand-built study directories."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.scripts_loader import load_script


def _script():
    return load_script("recipe_doc")


def _stat(mean: float, std: float = 0.0) -> dict:
    return {"mean": mean, "std": std, "values": [mean]}


def _study(root: Path, name: str, params: dict, ranks: dict[str, list[int]],
           comparison: dict | None = None) -> Path:
    """A finished one-seed study: study.json plus each variant's ranks.parquet (3 targets in
    sessions 0, 1, 1)."""
    study = root / name
    variants = {}
    for variant, r in ranks.items():
        run = study / "runs" / variant / "seed0"
        run.mkdir(parents=True)
        pl.DataFrame({"target_event": [10, 11, 12], "session": [0, 1, 1],
                      "rank": r}).write_parquet(run / "ranks.parquet")
        recall = sum(x <= 20 for x in r) / len(r)
        mrr = sum(1 / x for x in r if x <= 20) / len(r)
        variants[variant] = {"metrics": {"recall@20": _stat(recall), "mrr@20": _stat(mrr)},
                             "epochs": _stat(4.0)}
    summary = {"dataset": "toy", "seeds": [0], "variants": variants,
               "comparisons": comparison or {},
               "config": {"model": {"params": params}}}
    (study / "study.json").write_text(json.dumps(summary), encoding="utf-8")
    return study


CURRENT = {"loss": "cross-entropy", "optimizer": "adagrad", "learning_rate": 0.1,
           "momentum": 0.0, "n_sample": 512, "batch_size": 32}
THESIS = {"loss": "top1-max", "optimizer": "adam", "learning_rate": 0.01, "momentum": 0.0,
          "n_sample": 0, "batch_size": 32}


def test_recipes_side_by_side_by_hand(tmp_path):
    doc = _script()
    comp = {"WithUser-OneHot vs OnlySession-OneHot": {"mrr@20": {
        "estimate": 0.01, "low": 0.002, "high": 0.02, "verdict": "higher"}}}
    # current ranks 1, 2, 4 -> recall@20 1, MRR@20 (1 + 1/2 + 1/4) / 3 = 0.5833
    current = _study(tmp_path, "study-cur", CURRENT, {"WithUser-OneHot": [1, 2, 4]}, comp)
    # thesis ranks 2, 2, 30 -> recall@20 2/3, MRR@20 (1/2 + 1/2) / 3 = 0.3333
    thesis = _study(tmp_path, "study-th", THESIS, {"WithUser-OneHot": [2, 2, 30]})
    text = "\n".join(doc.dataset_section("toy", {"current": current, "thesis": thesis},
                                         "current"))
    assert ("| current | `study-cur` | cross-entropy, adagrad (lr 0.1, momentum 0.0), "
            "in-batch + 512 sampled, batch 32 |") in text
    assert "| thesis | `study-th` | top1-max, adam (lr 0.01), in-batch only, batch 32 |" in text
    assert ("| WithUser-OneHot | 1.0000 ± 0.0000 / 0.5833 ± 0.0000 (4.0) | "
            "0.6667 ± 0.0000 / 0.3333 ± 0.0000 (4.0) |") in text
    # the study's own comparison under each recipe (the thesis study has none)
    assert ("| WithUser-OneHot vs OnlySession-OneHot | +0.0100 [+0.0020, +0.0200] higher | — |"
            in text)
    # thesis - current, MRR@20 per prediction: (1/2 - 1) + 0 + (0 - 1/4) over 3 = -0.25
    row = next(line for line in text.splitlines()
               if line.startswith("| thesis | WithUser-OneHot | mrr@20 |"))
    assert "-0.2500" in row


def test_studies_of_other_predictions_are_refused(tmp_path):
    doc = _script()
    current = _study(tmp_path, "a", CURRENT, {"V": [1, 2, 3]})
    other = _study(tmp_path, "b", THESIS, {"V": [1, 2, 3]})
    pl.DataFrame({"target_event": [10, 11, 99], "session": [0, 1, 1], "rank": [1, 2, 3]}
                 ).write_parquet(other / "runs" / "V" / "seed0" / "ranks.parquet")
    with pytest.raises(SystemExit, match="different predictions"):
        doc.dataset_section("toy", {"current": current, "thesis": other}, "current")
