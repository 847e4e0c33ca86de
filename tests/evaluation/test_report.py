"""metrics.json writing (atomic, strict JSON) and generated Markdown tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sessionrec.errors import DataError
from sessionrec.evaluation import evaluate, markdown_table, read_results, write_results
from sessionrec.evaluation.significance import BootstrapCI

from .test_evaluator import DESCENDING, TEST, TRAIN, fixed


def test_round_trip_with_numpy_values(tmp_path: Path) -> None:
    payload = {
        "protocol": "next-item",
        "n_predictions": np.int64(4),
        "metrics": {"mrr@20": np.float32(0.5), "recall@20": 0.75},
        "ks": np.array([1, 20]),
        "dir": tmp_path,
    }
    path = write_results(tmp_path / "run", payload)
    assert path == tmp_path / "run" / "metrics.json"
    assert read_results(tmp_path / "run") == {
        "protocol": "next-item",
        "n_predictions": 4,
        "metrics": {"mrr@20": 0.5, "recall@20": 0.75},
        "ks": [1, 20],
        "dir": str(tmp_path),
    }
    assert read_results(path) == read_results(tmp_path / "run")


def test_eval_result_round_trip(tmp_path: Path) -> None:
    payload = evaluate(fixed(DESCENDING), TRAIN, TEST).to_dict()
    write_results(tmp_path, payload)
    assert read_results(tmp_path) == json.loads(json.dumps(payload))


def test_rewrite_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    write_results(tmp_path, {"a": 1})
    write_results(tmp_path, {"a": 2})
    assert read_results(tmp_path) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_results(tmp_path, {"a": 1})

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_results(tmp_path, {"a": 2})
    monkeypatch.undo()
    assert read_results(tmp_path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"payload\.metrics\.mrr@20"):
        write_results(tmp_path, {"metrics": {"mrr@20": float("nan")}})
    assert not (tmp_path / "metrics.json").exists()


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_results(tmp_path)
    (tmp_path / "metrics.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        read_results(tmp_path)


RESULTS = [
    {"model": "pop", "n_predictions": 1200, "metrics": {"recall@20": 0.1, "mrr@20": 0.02}},
    {"model": {"name": "gru4rec"}, "n_predictions": 1200,
     "metrics": {"recall@20": 0.61234, "mrr@20": 0.25}},
    {"metrics": {"recall@20": 0.5}},
]


def test_markdown_table() -> None:
    assert markdown_table(RESULTS) == (
        "| Model | recall@20 | mrr@20 | Predictions |\n"
        "|---|---:|---:|---:|\n"
        "| pop | 0.1000 | 0.0200 | 1,200 |\n"
        "| gru4rec | 0.6123 | 0.2500 | 1,200 |\n"
        "| run 3 | 0.5000 | n/a | n/a |\n"
    )


def test_markdown_table_with_intervals() -> None:
    ci = {
        "gru4rec": {
            "recall@20": (0.6, 0.625),
            "mrr@20": BootstrapCI(0.25, 0.24, 0.26, 0.002, 1200, 300, 1000, 0.05).to_dict(),
        }
    }
    table = markdown_table(RESULTS[:2], metrics=("mrr@20", "recall@20"), ci=ci, digits=3)
    assert table.splitlines()[2] == "| pop | 0.020 | 0.100 | 1,200 |"
    assert table.splitlines()[3] == (
        "| gru4rec | 0.250 [0.240, 0.260] | 0.612 [0.600, 0.625] | 1,200 |"
    )
