"""Data-parallel training with torch.distributed (gloo on the CPU), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessionrec.cli import main
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.training.distributed import all_sum, broadcast_float, launch, world

SMALL = ["--set", "filter.min_user_sessions=2", "--set", "filter.min_item_support=2"]
NARM = ["--set", "model.name=narm", "--set", "model.params.embedding=16",
        "--set", "model.params.hidden=16", "--set", "model.params.batch_size=64",
        "--set", "model.params.n_epochs=2", "--set", "model.params.progress=false",
        "--set", "eval.ks=[20]"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    assert main(["synth", "--events", "8000", "--seed", "5", "--out", str(root / "raw"),
                 "--events-per-shard", "4000"]) == 0
    assert main(["prepare", "--source", "galaxus", "--input", str(root / "raw"),
                 "--out", str(root / "data"), *SMALL]) == 0
    return root / "data"


def test_two_processes_train_and_rank_zero_writes_the_run(prepared, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--set", f"data.prepared={prepared}", "--out", str(out), "--nproc", "2",
                 "--device", "cpu", *NARM]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "narm"
    assert metrics["train"]["world_size"] == 2 and metrics["train"]["epochs"] == 2
    assert 0 < metrics["metrics"]["recall@20"] <= 1
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "model").is_dir()
    # resuming with another world size is refused, naming it
    assert main(["train", "--set", f"data.prepared={prepared}", "--out", str(out), "--resume",
                 "--set", "model.params.n_epochs=3", *NARM]) == 2
    assert "it was written with other world_size" in capsys.readouterr().err


GRU = ["--set", "model.name=gru4rec", "--set", "model.params.layers=[16]",
       "--set", "model.params.batch_size=16", "--set", "model.params.n_sample=32",
       "--set", "model.params.n_epochs=2", "--set", "model.params.progress=false",
       "--set", "eval.ks=[20]"]


@pytest.mark.parametrize("model", ["gru4rec", "hgru4rec"])
def test_gru4rec_and_hgru4rec_train_on_two_processes(prepared, tmp_path, capsys, model):
    out = tmp_path / "run"
    args = ["train", "--set", f"data.prepared={prepared}", "--out", str(out), "--nproc", "2",
            "--device", "cpu", *GRU, "--set", f"model.name={model}"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == model
    assert metrics["train"]["world_size"] == 2 and metrics["train"]["epochs"] == 2
    assert 0 < metrics["metrics"]["recall@20"] <= 1
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "model").is_dir()
    capsys.readouterr()
    # one more epoch from the checkpoint with another world size: refused, naming it
    assert main(["train", "--set", f"data.prepared={prepared}", "--out", str(out), "--resume",
                 *GRU, "--set", f"model.name={model}", "--set", "model.params.n_epochs=3"]) == 2
    assert "it was written with other world_size" in capsys.readouterr().err


def test_a_resumed_two_process_gru4rec_run_ends_as_an_uninterrupted_one(prepared, tmp_path):
    def train(out: Path, epochs: int, *extra: str) -> dict:
        assert main(["train", "--set", f"data.prepared={prepared}", "--out", str(out),
                     "--nproc", "2", "--device", "cpu", *GRU,
                     "--set", f"model.params.n_epochs={epochs}", *extra]) == 0
        return json.loads((out / "metrics.json").read_text())

    whole = train(tmp_path / "whole", 2)
    train(tmp_path / "cut", 1)
    resumed = train(tmp_path / "cut", 2, "--resume")
    assert resumed["train"]["history"]["resumed_from_epoch"] == 1
    assert resumed["metrics"] == whole["metrics"]
    a = (tmp_path / "whole" / "model" / "weights.pt").read_bytes()
    b = (tmp_path / "cut" / "model" / "weights.pt").read_bytes()
    assert a == b


def test_models_without_data_parallel_training_are_refused_up_front(prepared, tmp_path,
                                                                    capsys):
    assert main(["train", "--set", f"data.prepared={prepared}", "--out", str(tmp_path / "r"),
                 "--nproc", "2", "--set", "model.name=vsknn"]) == 2
    err = capsys.readouterr().err
    assert "'vsknn' does not train data-parallel (--nproc 2); models that do: " in err
    listed = err.split("models that do: ")[1].strip().split(", ")
    assert listed == sorted(listed) and {"narm", "stamp", "gru4rec", "hgru4rec"} <= set(listed)
    assert "vsknn" not in listed


def _raise_on_rank_one() -> None:
    if world()[0] == 1:
        raise RuntimeError("boom on purpose")


def _check_collectives() -> None:
    rank, size = world()
    assert size == 2
    assert all_sum([1.0, float(rank)]) == [2.0, 1.0]
    assert broadcast_float(7.0 if rank == 0 else None) == 7.0


def test_collectives_and_failures_name_the_rank():
    launch(2, _check_collectives, device="cpu")
    with pytest.raises(SessionRecError, match=r"rank 1 of 2 failed: .*boom on purpose"):
        launch(2, _raise_on_rank_one, device="cpu")
    with pytest.raises(ConfigError, match="at least 1"):
        launch(0, _check_collectives)
