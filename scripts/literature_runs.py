"""Run the literature's session models on a small benchmark (yoochoose-100k, retailrocket) the
way the Diginetica table was made: epochs and hybrid weights chosen on a valid split carved
from train, then every model refitted on the full train and evaluated on the test split.

    sessionrec prepare --source yoochoose --out YC
    sessionrec prepare --source yoochoose --out YC_VALID \\
        --set split.valid=true --set split.valid_days=1
    nice -n 10 python scripts/literature_runs.py --dataset yoochoose-100k \\
        --data YC --valid YC_VALID --out RUNS
    python scripts/literature_doc.py --dataset yoochoose-100k --runs RUNS

Per neural model ``M`` (the Diginetica config ``configs/diginetica-srgnn/M.toml``, GRU4Rec the
dataset's official parameter file) the script writes two configs under ``RUNS/_configs/``:

1. ``M-valid.toml``: up to ``--max-epochs`` epochs with early stopping (``patience``) on the
   valid split's MRR@20, trained on VALID's train part -> ``RUNS/_valid/M``;
2. ``M.toml``: ``n_epochs`` = the best valid epoch, no early stopping, trained on DATA's full
   train and evaluated on its test split -> ``RUNS/M``.

The catalogues here are small (2,933 and 4,786 items), so every model trains the full softmax
(``n_sample = -1``) the papers use, not the sampled one the Diginetica configs need on this CPU;
GRU4Rec keeps its official loss. A hybrid is first fitted on VALID without ``weights`` (its grid
chooses them on the valid split, the component a ``_valid`` run), then on DATA with the chosen
weights and the full-train component. The kNN models, SLIST and most-popular are fitted by one
``sessionrec evaluate``. Finished runs (``metrics.json`` present) are skipped, so the script can
be stopped and restarted; ``--shard i/n`` runs every n-th step (start n copies for n cores, the
hybrids wait for nothing: run them after their components with ``--only``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import load_average
from sessionrec.config import dump_toml
from sessionrec.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
DSD = ROOT / "configs" / "diginetica-srgnn"
KNN = ("pop", "sr", "sknn", "vsknn", "stan", "slist")
NEURAL = ("narm", "stamp", "stmp", "srgnn", "gcegnn", "sasrec", "core-ave", "gru4rec-tan",
          "gru4rec")
HYBRIDS = {"hybrid-vsknn-gcegnn": "gcegnn", "hybrid-vsknn-core": "core-ave",
           "hybrid-vsknn-sasrec": "sasrec"}
# dataset -> (source name, GRU4Rec's official parameter file)
DATASETS = {
    "yoochoose-100k": ("yoochoose", ROOT / "configs" / "yoochoose-100k" /
                       "gru4rec-official-best.toml"),
    "retailrocket": ("retailrocket", ROOT / "configs" / "retailrocket-hgru4rec" /
                     "gru4rec-official-best.toml"),
}


# parameters changed for a dataset, for the models that have them: SR-GNN's and GCE-GNN's
# step decay (x0.1 every 3 epochs) was set for Diginetica's ~1,300 batches an epoch; on
# retailrocket an epoch is ~12 batches of 512, and the decay stops learning after a few dozen
# steps (measured: SR-GNN's best valid epoch was the first, at MRR@20 .006)
DATASET_PARAMS = {"retailrocket": {"lr_decay": 1.0}}


def base_config(model: str, dataset: str) -> dict[str, Any]:
    """The committed config a run starts from, re-pointed at ``dataset``."""
    source, gru4rec = DATASETS[dataset]
    path = gru4rec if model == "gru4rec" else DSD / f"{model}.toml"
    cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    cfg["data"] = {"dataset": dataset, "source": source}
    params = cfg["model"]["params"]
    if model != "gru4rec" and "n_sample" in params:
        # full softmax: the papers' objective, affordable on a few thousand items
        params["n_sample"] = -1
        for key in ("sample_alpha", "logq"):
            params.pop(key, None)
    for key, value in DATASET_PARAMS.get(dataset, {}).items():
        if key in params:
            params[key] = value
    params["progress"] = False
    return cfg


def epochs_config(model: str, dataset: str, n_epochs: int, patience: int) -> dict[str, Any]:
    """:func:`base_config` with ``n_epochs`` and ``patience``: the valid run (the most epochs,
    early stopping) or the full-train refit (the best valid epoch, ``patience = 0``)."""
    cfg = base_config(model, dataset)
    cfg["model"]["params"].update(n_epochs=n_epochs, patience=patience)
    return cfg


def _train_record(run: Path) -> dict[str, Any]:
    """The ``train`` record of a finished run's ``metrics.json``."""
    return json.loads((run / "metrics.json").read_text(encoding="utf-8")).get("train", {})


def best_epoch(run: Path) -> int:
    """The epoch with the best valid MRR@20 in a finished run's ``metrics.json``."""
    history = _train_record(run).get("history") or {}
    if isinstance(history, str) or history.get("best_epoch") is None:
        raise DataError("the run has no best validation epoch (trained without a valid "
                        "split?)", path=str(run / "metrics.json"), column="train.history")
    return int(history["best_epoch"])


def chosen_weights(run: Path) -> list[float]:
    weights = _train_record(run).get("weights")
    if not weights:
        raise DataError("the hybrid run records no chosen weights",
                        path=str(run / "metrics.json"), column="train.weights")
    return [float(w) for w in weights]


def hybrid_config(name: str, component_run: Path, weights: list[float] | None,
                  dataset: str) -> dict[str, Any]:
    cfg = tomllib.loads((DSD / f"{name}.toml").read_text(encoding="utf-8"))
    cfg["data"] = {"dataset": dataset, "source": DATASETS[dataset][0]}
    params = cfg["model"]["params"]
    params["components"] = [{"name": "vsknn"}, {"run": str(component_run)}]
    params.pop("weights", None)
    if weights is not None:
        params["weights"] = weights
    else:
        params.update(select="mrr@20", grid=10)
    return cfg


def _run(cmd: list[str], out: Path, label: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    load = load_average()
    print(f"[{label}] {' '.join(cmd)}", flush=True)
    log = out.parent / f"{out.name}.log"
    with log.open("w", encoding="utf-8") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        raise SystemExit(f"[{label}] failed with exit code {rc}; see {log}")
    if out.is_dir():
        (out / "COMMAND.txt").write_text(
            " ".join(cmd) + f"\n# machine: {os.cpu_count()} cores, CPU only; load average at "
            f"start: {load}\n", encoding="utf-8")


def _train(cfg: dict[str, Any], cfg_path: Path, data: Path, out: Path, label: str) -> None:
    if (out / "metrics.json").is_file():
        return
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(dump_toml(cfg), encoding="utf-8")
    _run(["sessionrec", "train", "--config", str(cfg_path), "--data", str(data), "--out",
          str(out), "--overwrite"], out, label)


def steps(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(label, callable) in the order they run."""
    runs, cfgs = args.out, args.out / "_configs"
    only = set(args.only.split(",")) if args.only else None
    out: list[tuple[str, Any]] = []

    def want(name: str) -> bool:
        return only is None or name in only

    if want("knn") and not all((runs / m / "metrics.json").is_file() for m in KNN):
        out.append(("knn", lambda: _run(
            ["sessionrec", "evaluate", "--data", str(args.data), "--models", *KNN,
             "--baseline", "vsknn", "--dataset", args.dataset, "--out", str(runs)],
            runs / "vsknn", "knn")))
    for model in NEURAL:
        if not want(model):
            continue

        def neural(model: str = model) -> None:
            valid_run = runs / "_valid" / model
            _train(epochs_config(model, args.dataset, args.max_epochs, args.patience),
                   cfgs / f"{model}-valid.toml", args.valid, valid_run, f"{model} valid")
            _train(epochs_config(model, args.dataset, best_epoch(valid_run), 0),
                   cfgs / f"{model}.toml", args.data, runs / model, f"{model} full")
        out.append((model, neural))
    for name, component in HYBRIDS.items():
        if not want(name):
            continue

        def hybrid(name: str = name, component: str = component) -> None:
            valid_run = runs / "_valid" / name
            _train(hybrid_config(name, runs / "_valid" / component, None, args.dataset),
                   cfgs / f"{name}-valid.toml", args.valid, valid_run, f"{name} valid")
            _train(hybrid_config(name, runs / component, chosen_weights(valid_run),
                                 args.dataset),
                   cfgs / f"{name}.toml", args.data, runs / name, f"{name} full")
        out.append((name, hybrid))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--data", type=Path, required=True, help="prepared data (full train)")
    parser.add_argument("--valid", type=Path, required=True,
                        help="the same data prepared with split.valid=true")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated steps (knn, a model, a "
                        "hybrid)")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th step from the i-th")
    args = parser.parse_args(argv)
    for path in (args.data, args.valid):
        if not (path / "manifest.json").is_file():
            raise ConfigError(f"{path} is not a prepared data directory (no manifest.json)")
    i, n = (int(x) for x in args.shard.split("/"))
    for k, (label, step) in enumerate(steps(args)):
        if k % n == i:
            step()
            print(f"[{label}] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
