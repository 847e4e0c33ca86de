"""Train ALPINE, its ablations, the neighbour sweep and the baselines on kuairand-pure-slice
(or ALPINE_m and the baselines on trivago's impression lists: ``--dataset trivago``).

Every run is ``sessionrec train --config configs/DATASET/NAME.toml --data DATA --out
RUNS/LABEL/seedS --set model.params.seed=S``; finished runs (with metrics.json) are skipped,
so the script can be stopped and restarted. ``--shard i/n`` runs every n-th run (start n
copies to use n cores). Then ``python scripts/alpine_doc.py`` writes the docs table.

    sessionrec prepare --source kuairand --out runs/kuairand/data
    nice -n 10 python scripts/alpine_runs.py --data runs/kuairand/data --out runs/kuairand
    sessionrec prepare --source trivago --exposures --out runs/trivago/data
    nice -n 10 python scripts/alpine_runs.py --dataset trivago --seeds 2 \
        --data runs/trivago/data --out runs/trivago
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("alpine", "bpr-mf", "ncf", "lstm-r", "atrank")
ABLATIONS = ("alpine-u", "alpine-m", "alpine-um", "alpine-umg")
NEIGHBOURS = (2, 3, 4, 5)
# trivago has no like / follow: ALPINE_m is the model, and there is nothing to ablate it from
DATASETS = {"kuairand": (MODELS, ABLATIONS, NEIGHBOURS),
            "trivago": (("alpine-m", "bpr-mf", "ncf", "lstm-r", "atrank"), (), ())}


def plan(seeds: int, ablation_seeds: int, dataset: str = "kuairand",
         ) -> list[tuple[str, str, int, list[str]]]:
    """(label, config name, seed, extra --set values), the most important runs first."""
    models, ablations, neighbours = DATASETS[dataset]
    runs = []
    for seed in range(seeds):
        runs += [(m, m, seed, []) for m in models]
        if seed < ablation_seeds:
            runs += [(a, a, seed, []) for a in ablations]
    for seed in range(ablation_seeds):
        runs += [(f"alpine-L{n}", "alpine", seed, [f"model.params.neighbours={n}"])
                 for n in neighbours]
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="kuairand",
                        help="configs/DATASET/ and the runs planned for it")
    parser.add_argument("--data", type=Path, required=True, help="prepared exposure directory")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ablation-seeds", type=int, default=3)
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th run from the i-th")
    args = parser.parse_args(argv)
    i, n = (int(x) for x in args.shard.split("/"))
    for k, (label, config, seed, extra) in enumerate(plan(args.seeds, args.ablation_seeds,
                                                               args.dataset)):
        if k % n != i:
            continue
        out = args.out / label / f"seed{seed}"
        if (out / "metrics.json").is_file():
            continue
        cmd = [sys.executable, "-m", "sessionrec.cli", "train", "--config",
               str(ROOT / "configs" / args.dataset / f"{config}.toml"), "--data", str(args.data),
               "--out", str(out), "--overwrite", "--set", f"model.params.seed={seed}"]
        for value in extra:
            cmd += ["--set", value]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
