"""GRU4Rec accuracy and training speed with the official parameter sets, several seeds.

    python benchmarks/gru4rec.py [--seeds 0 1 2] [--threads 0] [--runs runs/bench-gru4rec]
                                 [--configs configs/yoochoose-100k/gru4rec-official-best.toml ...]
                                 [--reuse]

Every (config, seed) is one ``sessionrec train`` run (same code path: data prepared from
../shared/data by the config's source, fit on train, official next-item protocol on test,
full ranking, pessimistic ties) written to RUNS/<config>/seed-<s>/ with its metrics.json.
The tables are built from those files: accuracy into docs/results.md (section ``gru4rec``),
speed into docs/benchmarks.md (section ``gru4rec``). ``--reuse`` rebuilds the tables from
existing run directories without training; ``--section NAME`` writes other sections (to keep
an earlier sweep's tables).

The official implementation is not run here (its code must not enter this repository); its
figures are the reference measurements given in the project's GRU4Rec issue, taken with the
same protocol on a machine of the same kind (2 cores, CPU), mean ± sd of 3 runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _report import machine, update_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"
CONFIGS = (
    "configs/yoochoose-100k/gru4rec-official-best.toml",
    "configs/yoochoose-100k/gru4rec-official-default.toml",
    "configs/yoochoose-100k/gru4rec-tuned.toml",
    "configs/retailrocket-hgru4rec/gru4rec-official-best.toml",
    "configs/diginetica/gru4rec-official-best.toml",
)
# Official PyTorch GRU4Rec, same data and protocol, 2-core CPU (from the project's issue):
# recall@20, mrr@20, training events/s (rows x epochs / training seconds incl. the sampler).
OFFICIAL = {
    "configs/yoochoose-100k/gru4rec-official-best.toml": (
        ".6787 ± .0012", ".3570 ± .0010", 8155.0),
    "configs/yoochoose-100k/gru4rec-official-default.toml": (
        ".6719 ± .0014", ".3594 ± .0008", 13575.0),
    "configs/retailrocket-hgru4rec/gru4rec-official-best.toml": (
        ".5032 ± .0151", ".3971 ± .0082", 5847.0),
}


def run_one(config: str, seed: int, threads: int, run_dir: Path, data_dir: Path | None) -> Path:
    from sessionrec.cli import prepared_data
    from sessionrec.config import load_config
    from sessionrec.runs import RunConfig, load_splits, run

    overrides = [f"seed={seed}", f"model.params.seed={seed}", "model.params.progress=false",
                 f"model.params.threads={threads}"]
    cfg = load_config(RunConfig, ROOT / config, overrides)
    data = data_dir or prepared_data(cfg, run_dir.parent, None)
    run(cfg, load_splits(data, cfg.data.dataset), run_dir)
    return data


def mean_sd(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(sd, fmt)}"


def collect(runs: Path, config: str) -> list[dict]:
    base = runs / Path(config).with_suffix("").as_posix().replace("/", "__")
    return [json.loads(p.read_text()) for p in sorted(base.glob("seed-*/metrics.json"))]


def tables(runs: Path, configs: list[str]) -> tuple[str, str]:
    acc = ["| config | dataset | seeds | Recall@20 | MRR@20 | official Recall@20 | "
           "official MRR@20 |", "|---|---|---:|---:|---:|---:|---:|"]
    speed = ["| config | events/s (ours) | official events/s | ratio | epochs | "
             "sampler s/run | train s/run |", "|---|---:|---:|---:|---:|---:|---:|"]
    for config in configs:
        found = collect(runs, config)
        if not found:
            continue
        rec = [m["metrics"]["recall@20"] for m in found]
        mrr = [m["metrics"]["mrr@20"] for m in found]
        eps = [m["train"]["events_per_s"] for m in found]
        off = OFFICIAL.get(config)
        name = f"`{config.removeprefix('configs/')}`"
        acc.append(f"| {name} | {found[0]['dataset']} | {len(found)} | {mean_sd(rec, '.4f')} | "
                   f"{mean_sd(mrr, '.4f')} | {off[0] if off else '—'} | "
                   f"{off[1] if off else '—'} |")
        ratio = f"{statistics.mean(eps) / off[2]:.2f}×" if off else "—"
        speed.append(
            f"| {name} | {mean_sd(eps, ',.0f')} | {f'{off[2]:,.0f}' if off else '—'} | "
            f"{ratio} | {found[0]['train']['epochs']} | "
            f"{statistics.mean(m['train']['sampler_seconds'] for m in found):.2f} | "
            f"{statistics.mean(m['train']['train_seconds'] for m in found):.1f} |")
    return "\n".join(acc), "\n".join(speed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-gru4rec")
    parser.add_argument("--reuse", action="store_true", help="only rebuild the tables")
    parser.add_argument("--section", default="gru4rec",
                        help="section of docs/results.md and docs/benchmarks.md to write")
    args = parser.parse_args()
    if not args.reuse:
        for config in args.configs:
            base = args.runs / Path(config).with_suffix("").as_posix().replace("/", "__")
            data = None
            for seed in args.seeds:
                data = run_one(config, seed, args.threads, base / f"seed-{seed}", data)
                m = json.loads((base / f"seed-{seed}" / "metrics.json").read_text())
                print(f"{config} seed {seed}: recall@20 {m['metrics']['recall@20']:.4f} "
                      f"mrr@20 {m['metrics']['mrr@20']:.4f} "
                      f"{m['train']['events_per_s']:,.0f} ev/s", flush=True)
    acc, speed = tables(args.runs, args.configs)
    threads = sorted({m["params"].get("threads", 0) for c in args.configs
                      for m in collect(args.runs, c)})
    command = "python benchmarks/gru4rec.py " + " ".join(sys.argv[1:])
    note = (f"Machine: {machine()}. Command: `{command.strip()}` (torch threads per run: "
            f"{', '.join(str(t or 'default') for t in threads)}). Each row: mean ± sd over "
            "seeds of `sessionrec train --config CONFIG --set seed=S`; official figures: the "
            "reference measurements of the official PyTorch GRU4Rec (same data, parameters "
            "and protocol; 2-core CPU) given in the GRU4Rec issue.")
    update_section(args.section, "## GRU4Rec with the official parameter sets\n\n" + note + "\n\n"
                   + acc + "\n", doc=RESULTS)
    update_section(args.section, "## GRU4Rec training speed\n\n" + note + " events/s = training "
                   "rows × epochs / training seconds (sampler included, validation excluded)."
                   "\n\n" + speed + "\n")
    print(acc, speed, sep="\n\n")


if __name__ == "__main__":
    main()
