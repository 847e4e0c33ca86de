"""Ablation of Tan et al.'s options of ``gru4rec-tan`` on a prepared directory's VALID split.

Fits each variant on the train split (a fixed number of epochs, no early stopping) and
scores it on the valid split only (the test split is never read), writing one folder per
variant under ``--out`` (``params.json``, ``metrics.json`` with fit statistics) and a
Markdown table ``ablation.md`` built from those files. Variants run in parallel processes
(``--jobs``), each with one torch thread.

    python benchmarks/tan_ablation.py --data PREPARED_DIR --out runs/tan-ablation \\
        --base embedding=100 hidden=100 n_epochs=2 --variants base no-augment item-drop
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mb
from sessionrec.config import parse_override

VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "no-augment": {"augment": False},
    "item-drop-0.25": {"item_dropout": 0.25},
    "item-drop-0.5": {"item_dropout": 0.5},
    "finetune-0.3": {"finetune_fraction": 0.3, "finetune_epochs": 1},
    "output-embedding": {"prediction": "embedding"},
}


def run_variant(data: str, out: str, name: str, params: dict[str, Any],
                train_fraction: float = 1.0) -> dict[str, Any]:
    from sessionrec.batching.phases import recent_sessions
    from sessionrec.evaluation.evaluator import evaluate
    from sessionrec.models.base import get_model_class
    from sessionrec.runs import load_splits

    splits = load_splits(Path(data))
    train = splits.train
    if train_fraction < 1.0:  # the most recent sessions only (a cheaper ablation)
        train = train.subset(recent_sessions(train, train_fraction))
    model = get_model_class("gru4rec-tan")(**params)
    t0 = time.perf_counter()
    model.fit(train, None)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate(model, train, splits.valid, ks=(10, 20), num_threads=1)
    payload = {"variant": name, "params": params, "split": "valid",
               "train_fraction": train_fraction, "train_events": int(train.n_events),
               "metrics": result.metrics(), "fit_seconds": fit_s,
               "eval_seconds": time.perf_counter() - t0,
               "epochs": model.fit_stats_["epochs"],
               "peak_rss_mb": peak_rss_mb(),
               "load_after": os.getloadavg()}
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "metrics.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.rename(folder / "metrics.json")
    return payload


def table(out: Path) -> str:
    rows = ["| variant | HR@20 | MRR@20 | HR@10 | MRR@10 | epochs | fit s | load after |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for f in sorted(out.glob("*/metrics.json")):
        r = json.loads(f.read_text())
        m = r["metrics"]
        rows.append(f"| {r['variant']} | {100 * m['hr@20']:.2f} | {100 * m['mrr@20']:.2f} | "
                    f"{100 * m['hr@10']:.2f} | {100 * m['mrr@10']:.2f} | {r['epochs']} | "
                    f"{r['fit_seconds']:.0f} | "
                    f"{' / '.join(f'{x:.1f}' for x in r['load_after'])} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="prepared directory (its valid split is scored)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", nargs="*", default=[], help="KEY=VALUE parameters of every variant")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--train-fraction", type=float, default=1.0,
                    help="train on the most recent fraction of the train sessions")
    args = ap.parse_args()
    base = {"progress": False, "threads": 1}
    for kv in args.base:
        key, value = parse_override(kv)
        base[key[0]] = value
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load before {os.getloadavg()}", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_variant, args.data, str(out), v, {**base, **VARIANTS[v]},
                               args.train_fraction)
                   for v in args.variants]
        for fut in futures:
            r = fut.result()
            print(r["variant"], {k: round(v, 4) for k, v in r["metrics"].items()
                                 if k in ("hr@20", "mrr@20")}, f"{r['fit_seconds']:.0f}s",
                  flush=True)
    (out / "ablation.md").write_text(table(out) + "\n")
    print(table(out))


if __name__ == "__main__":
    main()
