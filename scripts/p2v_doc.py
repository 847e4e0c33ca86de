"""Regenerate the p2v section of docs/results.md: p2v and its options beside V-SKNN and GRU4Rec.

    python scripts/p2v_doc.py [--shared ../shared/data] [--runs runs/p2v] [--reuse]

Per dataset (prepared with its adapter's defaults) every variant below is fitted on train and
evaluated on test (next-item protocol, full ranking, pessimistic ties); each run writes its
config and metrics.json into RUNS/<dataset>/<variant>/, and the table is read back from those
files. Variants whose option the data cannot support (category negatives without a category,
the dwell filter without real timestamps) are left out and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import update_section
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.runs import RunConfig, build_model, fit_evaluate, load_splits, write_run

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (("yoochoose-100k", "yoochoose"), ("diginetica-srgnn-dev", "diginetica-srgnn"),
            ("rees46", "rees46"), ("taobao", "taobao"))
# (run name, model, params); "needs" says what the data must have.
VARIANTS: tuple[tuple[str, str, dict, str], ...] = (
    ("pop", "pop", {}, ""),
    ("vsknn", "vsknn", {}, ""),
    ("gru4rec", "gru4rec", {"progress": False}, ""),
    ("p2v", "p2v", {}, ""),
    ("p2v prod2vec (lambda 0)", "p2v", {"lambda_meta": 0.0}, ""),
    ("p2v last item only", "p2v", {"last_n": 1}, ""),
    ("p2v + pop 0.1", "p2v", {"pop_weight": 0.1}, ""),
    ("p2v exclude viewed", "p2v", {"exclude_viewed": True}, ""),
    ("p2v category negatives", "p2v", {"negatives_from": "category"}, "category"),
    ("p2v dwell >= 5 s", "p2v", {"min_dwell": 5.0}, "timestamps"),
)
METRICS = ("recall@20", "mrr@20", "ndcg@20", "coverage@20")


def supports(need: str, data: Path, splits) -> bool:
    if need == "category":
        import polars as pl

        items = pl.read_parquet(data / "items.parquet")
        return "category" in items.columns and items["category"].null_count() < items.height
    if need == "timestamps":
        import numpy as np

        gaps = np.diff(splits.train.ts)
        # order-only data gets synthetic times (events 100 ms apart): no dwell to measure
        return bool((gaps > 1).mean() > 0.5)
    return True


def run_dataset(name: str, source_name: str, shared: Path, runs: Path, reuse: bool,
                skip: set[str]) -> list[str]:
    source = get_source(source_name)
    data = runs / name / "data"
    if not (reuse and (data / "items.parquet").is_file()):
        prepare(source, shared / source.shared_dir, data,
                load_config(PrepareConfig, base=source.defaults), overwrite=True)
    splits = load_splits(data, name)
    rows, notes, found = [], [], {}
    for label, model_name, params, need in VARIANTS:
        if model_name in skip or label in skip:
            notes.append(f"`{label}` not run on this dataset (time on the shared machine)")
            continue
        if need and not supports(need, data, splits):
            notes.append(f"`{label}` left out: the data has no {need}")
            continue
        run_dir = runs / name / label.replace(" ", "_").replace("(", "").replace(")", "")
        if not (reuse and (run_dir / "metrics.json").is_file()):
            cfg = load_config(RunConfig, overrides=[f"model.name={model_name}"] + [
                f"model.params.{k}={json.dumps(v)}" for k, v in params.items()])
            t0 = time.perf_counter()
            model = build_model(cfg.model, splits.items)
            result, timing = fit_evaluate(model, splits, cfg.eval)
            write_run(run_dir, cfg, model, splits, result, timing)
            print(f"{name} {label}: {time.perf_counter() - t0:.0f} s, load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        payload = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        m = payload["metrics"]
        found[label] = m
        rows.append(f"| {label} | " + " | ".join(f"{m[k]:.4f}" for k in METRICS)
                    + f" | {payload['n_predictions']:,} | {payload['train']['seconds']:.0f} |")
    for other in ("vsknn", "gru4rec"):
        if "p2v" in found and other in found:
            a, b = found["p2v"], found[other]
            notes.append(f"p2v minus {other}: recall@20 {a['recall@20'] - b['recall@20']:+.4f}, "
                         f"mrr@20 {a['mrr@20'] - b['mrr@20']:+.4f}")
    head = [f"### {name}", "",
            f"{splits.train.n_events:,} train events, {splits.test.n_sessions:,} test sessions, "
            f"{splits.train.n_items:,} items.", "",
            "| model | " + " | ".join(METRICS) + " | predictions | fit s |",
            "|---|" + "---:|" * (len(METRICS) + 2)]
    return head + rows + ([""] + [f"- {n}" for n in notes] if notes else []) + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "p2v")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--datasets", nargs="+", default=[d for d, _ in DATASETS])
    parser.add_argument("--skip", nargs="*", default=[],
                        help="models or variants to leave out; DATASET=NAME for one dataset")
    parser.add_argument("--reuse", action="store_true", help="keep finished runs")
    args = parser.parse_args()
    parts = [
        "## p2v: prod2vec as a session recommender (seed 004)", "",
        "Generated by `python scripts/p2v_doc.py` from the runs' `metrics.json` files "
        f"(machine: {os.cpu_count()} cores shared with other sessions, CPU). Same protocol as "
        "above: next-item, full ranking over all training items, pessimistic ties. p2v "
        "defaults: Meta-Prod2Vec dim 64, window 3, 2 epochs, 5 negatives (lambda 1 where the "
        "data has brand/category/price), session vector = mean of the last 5 items with "
        "recency weight 0.7^age, exact cosine to every item. GRU4Rec and V-SKNN with their "
        "default parameters where the shared machine allowed it; on yoochoose-100k compare with "
        "the GRU4Rec section above (official parameter sets, same data and protocol).", ""]
    left = [d for d, _ in DATASETS if d not in args.datasets]
    if left:
        parts += [f"Not measured in this generation (`--datasets` left them out): "
                  f"{', '.join(left)}.", ""]
    update_section("p2v", "\n".join(parts), doc=args.out)
    for name, source_name in DATASETS:  # one section per dataset, written as it finishes
        if name in args.datasets:
            skip = {x.split("=", 1)[-1] for x in args.skip if "=" not in x
                    or x.split("=", 1)[0] == name}
            text = run_dataset(name, source_name, args.shared, args.runs, args.reuse, skip)
            update_section(f"p2v-{name}", "\n".join(text), doc=args.out)
            print(f"wrote {name} into {args.out}", flush=True)


if __name__ == "__main__":
    main()
