"""GRU4Rec / HGRU4Rec before and after a change of the shared code, side by side.

    python benchmarks/core_regression.py --before COMMIT [--seeds 0] [--epochs 3]
        [--configs configs/yoochoose-100k/gru4rec-official-best.toml ...]

``--section NAME`` writes another section (to keep the record of an earlier change).
Checks out ``COMMIT`` into a temporary git worktree and runs the same ``sessionrec train``
(same config, seed and epochs, one torch thread) with that code and with this tree,
alternately, so both see the same machine load. Training on the CPU is deterministic, so an
unchanged computation gives *identical* metrics; speed is reported as the ratio of training
events/s (after / before) beside the load average. Section ``core-regression`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import commit_checkout, load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]


def train(src: Path, config: str, seed: int, epochs: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "sessionrec.cli", "train", "--config", config,
                    "--out", str(out), "--overwrite", "--set", f"seed={seed}",
                    "--set", f"model.params.seed={seed}",
                    "--set", f"model.params.n_epochs={epochs}",
                    "--set", "model.params.progress=false", "--set", "model.params.threads=1"],
                   check=True, env=env, cwd=ROOT)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="commit of the code before the change")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--configs", nargs="+",
                        default=["configs/yoochoose-100k/gru4rec-official-best.toml"])
    parser.add_argument("--section", default="core-regression",
                        help="docs/benchmarks.md section to write")
    args = parser.parse_args()
    rows = []
    with commit_checkout(args.before) as before, tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            for seed in args.seeds:
                load0 = load_average()
                a = train(before / "src", config, seed, args.epochs, Path(tmp) / "a")
                b = train(ROOT / "src", config, seed, args.epochs, Path(tmp) / "b")
                load1 = load_average()
                ma, mb = a["metrics"], b["metrics"]
                ea, eb = a["train"]["events_per_s"], b["train"]["events_per_s"]
                differ = sorted(k for k in ma if ma[k] != mb.get(k))
                rows.append(f"| {config} | {seed} | {ma['recall@20']:.4f} / "
                            f"{ma['mrr@20']:.4f} | {mb['recall@20']:.4f} / "
                            f"{mb['mrr@20']:.4f} | {', '.join(differ) or 'none'} | {ea:,.0f} | "
                            f"{eb:,.0f} | {eb / ea:.2f} | {load0} → {load1} |")
                print(rows[-1], flush=True)
    body = "\n".join([
        "## Shared-code changes: GRU4Rec before vs after", "",
        f"Measured on {machine()}; `python benchmarks/core_regression.py --before "
        f"{args.before} --epochs {args.epochs} --seeds {' '.join(map(str, args.seeds))} "
        f"--configs {' '.join(args.configs)} --section {args.section}` "
        "(one torch thread; before and after run alternately in one script). The machine was "
        "shared with other work: the load average is given beside each row.", "",
        "Metrics that differ are listed: ranking metrics (recall, MRR, NDCG) come from the "
        "model's scores; coverage and popularity also depend on how the evaluator breaks ties "
        "among the top-k, which changed in the evaluator speed-up (issue 17).", "",
        "| config | seed | before R@20 / MRR@20 | after R@20 / MRR@20 | metrics that differ "
        "| before ev/s | after ev/s | after / before | load avg (before → after) |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|", *rows])
    print(body)
    update_section(args.section, body)


if __name__ == "__main__":
    main()
