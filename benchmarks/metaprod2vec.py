"""Meta-Prod2Vec training throughput: positive (centre, context) pairs per second.

The data is a synthetic Galaxus-format log (`sessionrec synth --seed 0`, cached under
bench-data/) prepared with the default PrepareConfig; training reads its train split, as
`sessionrec embed` does. Each mode is trained with the default hyper-parameters (dim 64,
window 3, 5 negatives, 2 epochs): prod2vec (lambda 0: item pairs only) and Meta-Prod2Vec
(lambda 1: brand, product type and price class tokens, every metadata term). Timings are whole
epochs: pair generation, shuffling, negative sampling and the updates. "pairs" counts every
positive pair of every term; "item pairs" only the item -> item ones.

    python benchmarks/metaprod2vec.py                 # updates docs/benchmarks.md
    python benchmarks/metaprod2vec.py --events 200000 --no-write
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import DOC, machine, update_section
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.embeddings.metaprod2vec import MetaProd2VecConfig, train_prepared

ROOT = Path(__file__).resolve().parents[1]
SECTION = "metaprod2vec"


def raw_data(n_events: int, work: Path) -> Path:
    raw = work / f"raw-{n_events}"
    if not raw.exists():
        subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events",
                        str(n_events), "--seed", "0", "--out", str(raw)], check=True)
    return raw


def run(n_events: int, work: Path, threads: list[int]) -> tuple[str, list[dict]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        manifest = prepare(get_source("galaxus"), raw_data(n_events, work), data,
                           load_config(PrepareConfig))
        train = manifest["splits"]["train"]
        about = (f"{n_events:,} raw events -> train split {train['events']:,} events, "
                 f"{train['sessions']:,} sessions, {manifest['n_items']:,} items")
        print(about, flush=True)
        for n_threads in threads:
            for mode, lam in (("prod2vec", 0.0), ("Meta-Prod2Vec", 1.0)):
                load = os.getloadavg()[0]
                model, _ = train_prepared(data, MetaProd2VecConfig(lambda_meta=lam,
                                                                   threads=n_threads))
                h = model.history
                seconds = sum(e["seconds"] for e in h)
                row = {"mode": mode, "threads": n_threads, "tokens": model.tokens.n_tokens,
                       "pairs": sum(e["pairs"] for e in h),
                       "item_pairs": sum(e["item_pairs"] for e in h),
                       "seconds": seconds, "cpu_seconds": sum(e["cpu_seconds"] for e in h),
                       "epoch_s": seconds / len(h), "load": load,
                       "loss": h[-1]["loss"]}
                row["pairs_per_s"] = row["pairs"] / seconds
                row["item_pairs_per_s"] = row["item_pairs"] / seconds
                rows.append(row)
                print(f"{mode:14s} threads {n_threads}: {row['pairs']:,} pairs in "
                      f"{seconds:.1f} s = {row['pairs_per_s']:,.0f} pairs/s "
                      f"(load before {load:.1f})", flush=True)
    return about, rows


def render(about: str, rows: list[dict], command: str) -> str:
    lines = [
        "## Meta-Prod2Vec: training throughput",
        "",
        f"Data: synthetic Galaxus-format log, {about}. Defaults: dim 64, window 3, "
        "5 negatives, 2 epochs, batch 16,384 pairs, row-wise Adagrad.",
        f"Machine: {machine()}. Other processes shared the cores while this ran (\"load\" is "
        "the 1-minute load average just before each run), so pairs/s is what this process got; "
        "\"pairs per CPU s\" divides by the CPU time it was given.",
        f"Command: `{command}`",
        "",
        "| mode | torch threads | pairs (2 epochs) | pairs/s | item pairs/s | s per epoch "
        "| CPU s | pairs per CPU s | load | final loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['mode']} | {r['threads']} | {r['pairs']:,} | {r['pairs_per_s']:,.0f} "
              f"| {r['item_pairs_per_s']:,.0f} | {r['epoch_s']:.1f} | {r['cpu_seconds']:.1f} "
              f"| {r['pairs'] / r['cpu_seconds']:,.0f} | {r['load']:.1f} | {r['loss']:.3f} |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="raw synthetic events")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    about, rows = run(args.events, args.work, args.threads)
    command = " ".join(["python", "benchmarks/metaprod2vec.py", *sys.argv[1:]])
    text = render(about, rows, command)
    print(text)
    if not args.no_write:
        update_section(SECTION, text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
